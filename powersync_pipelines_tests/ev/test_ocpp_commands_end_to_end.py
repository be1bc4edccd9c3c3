"""``powersync ocpp serve`` and ``powersync simulate ocpp-cp`` as separate processes; the planner's setpoint
crosses from a third process through the DuckDB hand-off and comes back answered."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from powersync_pipelines.ev import handoff
from powersync_pipelines.storage import HistoryStore

POWERSYNC = [sys.executable, "-m", "powersync_pipelines.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.stdout.read() if proc.stdout else ""


def test_serve_and_simulated_charge_point_processes(tmp_path):
    db = tmp_path / "ev.duckdb"
    store = HistoryStore(db)
    store.migrate()
    port = _free_port()
    env = {**os.environ, "POWERSYNC_HOME": str(tmp_path)}
    serve = subprocess.Popen([*POWERSYNC, "ocpp", "serve", "--port", str(port), "--db", str(db), "--poll-s", "0.2",
                              "--meter-interval-s", "5"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    cp = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait for the listener
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert serve.poll() is None, _stop(serve)
            time.sleep(0.2)
        cp = subprocess.Popen([*POWERSYNC, "simulate", "ocpp-cp", "--url", f"ws://127.0.0.1:{port}/demo-cp1",
                               "--time-scale", "30"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if len(store.query("SELECT * FROM ocpp_transactions WHERE status = 'active'")):
                break
            assert cp.poll() is None, _stop(cp)
            time.sleep(0.2)
        sid = handoff.request_setpoint(store, "demo", "demo-cp1", 32, "A", requested_by="test")
        sp = handoff.wait_for_outcome(store, sid, timeout_s=60, poll_s=0.2)
        assert sp.status == "applied" and sp.sent_value == 32, sp
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the car draws the 32 A it was allowed
            q = store.query("SELECT max(value) FROM ocpp_meter_values WHERE measurand = 'Current.Import'").iloc[0, 0]
            if q == 32:
                break
            time.sleep(0.2)
        assert store.query("SELECT max(value) FROM ocpp_meter_values WHERE measurand = 'Current.Import'").iloc[0, 0] <= 32
        assert store.query("SELECT max(value) FROM ocpp_meter_values WHERE measurand = 'Current.Import'").iloc[0, 0] == 32
    finally:
        out_cp = _stop(cp) if cp is not None else ""
        out_serve = _stop(serve)
    assert "central system on ws://127.0.0.1" in out_serve and "demo-cp1 (demo)" in out_serve
    assert "simulated charge point 'demo-cp1'" in out_cp


@pytest.mark.parametrize("argv, message", [
    (["ocpp", "serve", "--port", "70000"], "is not a TCP port"),
    (["ocpp", "serve", "--port", "9000", "--sites", "/nonexistent.yaml"], "sites file not found"),
    (["simulate", "ocpp-cp"], "needs --url"),
])
def test_bad_arguments_get_one_clear_line(argv, message, capsys):
    from powersync_pipelines.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
