"""A generated fleet for the fleet benchmark and its tests: N sites on the shipped replay data, and ONE simulator
process serving every site's battery on loopback.

Sites vary the way a retailer's fleet does: battery kind (Sungrow SH and Sigenergy over Modbus TCP, Tesla over
the Fleet API's HTTP shape), capacity and rating, AU (AEMO VIC1 replay, Melbourne/Sydney/Brisbane/Adelaide
clocks) or UK (Octopus Agile replay, London), retail adders and solar size. The same ``seed`` gives the same
fleet.

The simulators run in a child process (``python -m powersync_pipelines.sim.fleet``) so that the planning run is
measured alone: the child reads the device list as one JSON line on stdin, answers one JSON line of endpoints,
and serves until its stdin closes. A device marked ``"silent": true`` accepts TCP connections and never
answers (a battery that has gone quiet), for the tests of a dead battery.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..paths import REPO_ROOT

AU_PRICES = "data/prices/PRICE_AND_DEMAND_202402_VIC1_excerpt.csv"
UK_PRICES = "data/prices/octopus_agile_A_import_C_outgoing_202102.csv"
LOAD_PROFILE = "data/profiles/ausgrid_customer12.csv"
AU_ZONES = ("Australia/Melbourne", "Australia/Sydney", "Australia/Brisbane", "Australia/Adelaide")
KINDS = ("sungrow_sh", "sigenergy", "tesla")
KIND_SHARE = (0.45, 0.35, 0.20)  # Tesla's HTTP peers are a thread each in the simulator: a smaller share
# A retailer's fleet is on a handful of plans: AU sites get one of these network adders ($/kWh) on the same
# VIC1 wholesale prices, so the fleet has three AU price frames and one UK one.
RETAIL_ADDERS = (0.09, 0.12, 0.15)
TOKEN_ENV = "POWERSYNC_FLEET_SIM_TOKEN"
SIM_TOKEN = "fleet-sim-token"  # the loopback simulators' bearer token, not a credential
SIM_TICK_S = 2.0  # physics step of each simulator (real time is used, so a coarse tick costs no accuracy)


def fleet_devices(n: int, seed: int = 7, uk_share: float = 0.25) -> list[dict[str, Any]]:
    """N device descriptions (id, kind, capacity, rating, SOC, country, time zone); deterministic for a seed."""
    if n < 1:
        raise ValueError(f"a fleet needs at least one site, not {n}")
    rng = random.Random(seed)
    devices = []
    for i in range(n):
        kind = rng.choices(KINDS, KIND_SHARE)[0]
        capacity = rng.choice((5.0, 9.6, 10.0, 13.5, 16.0, 25.6))
        rated = round(min(capacity / 2, rng.choice((3.0, 5.0, 8.0, 10.0))), 1)
        uk = rng.random() < uk_share
        devices.append({
            "id": f"site{i:05d}", "kind": kind, "capacity_kwh": capacity, "max_kw": rated,
            "soc": round(rng.uniform(0.25, 0.9), 3), "country": "UK" if uk else "AU",
            "timezone": "Europe/London" if uk else rng.choice(AU_ZONES),
            "network_adder": rng.choice(RETAIL_ADDERS), "solar_kw": rng.choice((0.0, 3.0, 5.0, 6.6, 10.0)),
        })
    return devices


def site_entry(device: dict[str, Any], endpoint: dict[str, Any]) -> dict[str, Any]:
    """The sites-file entry of one generated device, its battery at ``endpoint`` (from the simulator)."""
    battery: dict[str, Any] = {
        "kind": device["kind"], "capacity_kwh": device["capacity_kwh"], "max_charge_kw": device["max_kw"],
        "max_discharge_kw": device["max_kw"], "backup_reserve_pct": 10, "optimizer_reserve_pct": 20,
        "initial_soc_pct": round(device["soc"] * 100, 1),
        # a fleet cycle must not wait long on one battery: short per-request timeout, one retry
        "timeout_s": 2.0, "connect_attempts": 2, "backoff_base_s": 0.2,
    }
    if device["kind"] == "tesla":
        battery.update(base_url=endpoint.get("base_url") or f"http://127.0.0.1:{endpoint['port']}",
                       token_env=TOKEN_ENV)
    else:  # Sigenergy answers on its plant unit (the driver's default), Sungrow on unit 1
        battery.update(host="127.0.0.1", port=endpoint["port"])
        if device["kind"] == "sungrow_sh":
            battery["device_id"] = 1
    if device["country"] == "UK":
        provider = {"kind": "replay", "file": str(REPO_ROOT / UK_PRICES), "format": "normalized"}
    else:
        provider = {"kind": "replay", "region": "VIC1", "file": str(REPO_ROOT / AU_PRICES), "format": "aemo",
                    "replay_start": "2024-02-12T20:00:00Z",
                    "retail": {"network_adder_per_kwh": device["network_adder"], "gst": 0.10,
                               "import_floor_per_kwh": 0.0, "export_factor": 1.0, "export_fee_per_kwh": 0.0}}
    site: dict[str, Any] = {
        "id": device["id"], "timezone": device["timezone"], "country": device["country"], "provider": provider,
        "battery": battery, "load": {"profile": str(REPO_ROOT / LOAD_PROFILE)},
        "limits": {"export_kw": 5.0, "import_kw": 15.0},
    }
    if device["solar_kw"]:
        site["solar"] = {"peak_kw": device["solar_kw"], "tilt": 20,
                         "azimuth": 180 if device["country"] == "UK" else 0}
    return site


# -- the simulator process --------------------------------------------------------------------------------
class _Silent:
    """A TCP port that completes the handshake (the kernel's backlog) and never reads or answers."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]

    def stop(self) -> None:
        self.sock.close()


def _start(device: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    kind = "silent" if device.get("silent") else device["kind"]
    common = {"capacity_kwh": device["capacity_kwh"], "soc": device["soc"], "max_charge_kw": device["max_kw"],
              "max_discharge_kw": device["max_kw"]}
    if kind == "silent":
        silent = _Silent()
        return silent, {"port": silent.port, "base_url": None}
    if kind == "tesla":
        from .tesla import TeslaSimulator

        tesla = TeslaSimulator(port=0, token=SIM_TOKEN, timezone=device["timezone"], **common).start()
        return tesla, {"port": tesla.port, "base_url": tesla.base_url}
    if kind == "sigenergy":
        from .sigenergy import SigenergySimulator

        sim: Any = SigenergySimulator(port=0, tick_s=SIM_TICK_S, **common)
    else:
        from .sungrow_sh import SungrowSimulator

        sim = SungrowSimulator(port=0, tick_s=SIM_TICK_S, **common)
    sim.start()
    return sim, {"port": sim.port, "base_url": None}


def serve(stdin: Any = None, stdout: Any = None) -> int:
    """The child's main: devices from one JSON line on stdin; endpoints as one JSON line; serve until EOF."""
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    line = stdin.readline()
    try:
        devices = json.loads(line)
    except json.JSONDecodeError as exc:
        print(f"fleet simulator: the device list is not JSON ({exc})", file=sys.stderr)
        return 2
    running: list[Any] = []
    try:
        endpoints = {}
        for d in devices:
            sim, endpoint = _start(d)
            running.append(sim)
            endpoints[d["id"]] = endpoint
        stdout.write(json.dumps(endpoints) + "\n")
        stdout.flush()
        while stdin.readline():  # the parent closes stdin to stop us
            pass
    finally:
        for sim in running:
            with contextlib.suppress(Exception):  # stopping: a simulator already gone is fine
                sim.stop()
    return 0


@contextmanager
def fleet_simulators(devices: list[dict[str, Any]], startup_timeout_s: float = 900.0
                     ) -> Iterator[tuple[dict[str, dict[str, Any]], subprocess.Popen[str]]]:
    """Start one simulator process for ``devices``; yields (``{site id: {port, base_url}}``, the process).
    The process (and every simulator in it) is stopped when the block ends."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "powersync_pipelines.sim.fleet"], cwd=REPO_ROOT, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(devices) + "\n")
        proc.stdin.flush()
        line = _readline(proc, startup_timeout_s)
        if not line:
            err = proc.stderr.read() if proc.stderr is not None else ""
            raise RuntimeError(f"the fleet simulator exited before serving: {err.strip()[-500:]}")
        yield json.loads(line), proc
    finally:
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _readline(proc: subprocess.Popen[str], timeout_s: float) -> str:
    import selectors

    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout_s):
            raise TimeoutError(f"the fleet simulator did not start within {timeout_s:.0f} s")
    return proc.stdout.readline()


@dataclass
class Released:
    """One child of :func:`released_together`: its exit code, its stdout lines after ``ready``, its stderr."""

    returncode: int
    lines: list[str] = field(default_factory=list)
    stderr: str = ""


def released_together(commands: list[list[str]], env: dict[str, str], ready_timeout_s: float = 600.0,
                      timeout_s: float = 3600.0) -> tuple[float, list[Released]]:
    """Start every command, wait until each has printed its first stdout line (``ready``: loaded, about to read
    stdin), then release them all at one moment by writing a line to each one's stdin.

    Processes that run "at once" must not be started at once: loading Definitions takes seconds and varies, so
    started together they would begin their work staggered. Returns (``time.monotonic()`` of the release: the
    machine's clock, the same in every process, the children's stdout lines after the first, their stderr).
    stdout and stderr are drained by threads, so a chatty child never blocks on a full pipe. A child that exits
    before it is ready stops them all with a RuntimeError carrying its stderr."""
    procs = [subprocess.Popen(cmd, env=env, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for cmd in commands]
    outs: list[list[str]] = [[] for _ in procs]
    errs: list[list[str]] = [[] for _ in procs]
    ready = [threading.Event() for _ in procs]

    def drain_out(i: int) -> None:
        assert procs[i].stdout is not None
        for line in procs[i].stdout:
            outs[i].append(line.rstrip("\n"))
            ready[i].set()
        ready[i].set()  # at EOF too: the caller then sees the exit code

    def drain_err(i: int) -> None:
        assert procs[i].stderr is not None
        errs[i].append(procs[i].stderr.read())

    threads = [threading.Thread(target=fn, args=(i,), daemon=True)
               for i in range(len(procs)) for fn in (drain_out, drain_err)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + ready_timeout_s
        for i, p in enumerate(procs):
            if not ready[i].wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"child {i} ({' '.join(commands[i][-1:])}) not ready within {ready_timeout_s:.0f} s")
            if not outs[i]:
                p.wait(timeout=30)
                for t in threads[2 * i:2 * i + 2]:
                    t.join(5)
                raise RuntimeError(f"child {i} exited (code {p.returncode}) before it was ready: "
                                   f"{''.join(errs[i]).strip()[-2000:]}")
        released = time.monotonic()
        for p in procs:
            assert p.stdin is not None
            with contextlib.suppress(BrokenPipeError):  # a child that died after ready: its exit code says so
                p.stdin.write("go\n")
                p.stdin.flush()
                p.stdin.close()
        end = time.monotonic() + timeout_s
        for p in procs:
            p.wait(timeout=max(0.0, end - time.monotonic()))
        for t in threads:
            t.join(30)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return released, [Released(p.returncode, outs[i][1:], "".join(errs[i])) for i, p in enumerate(procs)]


def write_sites_file(path: Path, devices: list[dict[str, Any]], endpoints: dict[str, dict[str, Any]]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump({"sites": [site_entry(d, endpoints[d["id"]]) for d in devices]},
                                   sort_keys=False))
    return path


if __name__ == "__main__":
    sys.exit(serve())
