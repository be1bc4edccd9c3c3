"""Simulators asked for the same port: exactly one owns it, the other learns so from its own bind and (through
``simulated_devices``) serves on another port; never check-then-bind (issue 31, finding 2)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest
from pymodbus.client import ModbusTcpClient

from powersync_pipelines.devices.maps import SG
from powersync_pipelines.sim.modbus_server import PortInUseError, bind_listener
from powersync_pipelines.sim.site_devices import simulated_devices
from powersync_pipelines.sim.sungrow_sh import SungrowSimulator


def test_a_second_simulator_on_a_taken_port_raises_port_in_use() -> None:
    with SungrowSimulator(port=0) as first, pytest.raises(PortInUseError, match=str(first.port)):
        SungrowSimulator(port=first.port).start()


def test_simulated_devices_moves_a_site_off_a_taken_port(demo_site) -> None:
    holder = bind_listener("127.0.0.1", 0)  # another program listening on the site's configured port
    try:
        taken = holder.getsockname()[1]
        site = demo_site.model_copy(update={"battery": demo_site.battery.model_copy(update={"port": taken})})
        with simulated_devices([site]) as endpoints:
            host, port = endpoints[site.id].split(":")
            assert int(port) != taken
            client = ModbusTcpClient(host, port=int(port))  # the endpoint reported back is the one serving
            try:
                assert client.connect()
                soc = client.read_input_registers(SG.SOC, count=1, device_id=1).registers[0]
            finally:
                client.close()
            assert soc == round(site.battery.initial_soc_pct * 10)
    finally:
        holder.close()


RACER = textwrap.dedent("""
    import json, sys, time
    from powersync_pipelines.sim.modbus_server import PortInUseError
    from powersync_pipelines.sim.sungrow_sh import SungrowSimulator
    port, go = int(sys.argv[1]), float(sys.argv[2])
    while time.time() < go:
        time.sleep(0.001)
    try:
        sim = SungrowSimulator(port=port).start()
    except PortInUseError:
        print(json.dumps("in_use"), flush=True)
        sys.exit(0)
    print(json.dumps("owner"), flush=True)
    sys.stdin.read()  # hold the port until the test has heard from every racer
    sim.stop()
""")


def test_processes_racing_for_one_port_never_both_own_it() -> None:
    probe = bind_listener("127.0.0.1", 0)
    port = probe.getsockname()[1]
    probe.close()
    go = time.time() + 3.0  # every racer imports first, then all bind at the same instant
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(port), str(go)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True) for _ in range(4)]
    try:
        answers = [json.loads(p.stdout.readline()) for p in racers]
    finally:
        for p in racers:
            p.communicate("", timeout=60)
    assert sorted(answers) == ["in_use", "in_use", "in_use", "owner"]
