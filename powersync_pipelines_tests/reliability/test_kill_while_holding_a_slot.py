"""A real kill -9 of ``powersync demo`` while one of its steps holds the ``duckdb_history`` pool slot, then a
second demo on the same home: the sweep marks the dead run failed, frees its slot, and the second demo succeeds
(issue 31, finding 1; before the sweep the second demo spun forever on "Step blocked by limit")."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import dagster as dg

from .runs import instance_of, run_demo, slot_holders, start_demo, wait_until


def test_a_demo_killed_holding_the_pool_slot_does_not_wedge_the_next(tmp_path: Path) -> None:
    root = tmp_path / "home"
    proc = start_demo(root, tmp_path / "killed.log")
    try:
        assert wait_until(lambda: (root / "dagster" / "dagster.yaml").exists(), 120)
        held = wait_until(lambda: bool(slot_holders(instance_of(root))), 180, poll_s=0.02)
        assert held, (tmp_path / "killed.log").read_text()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    instance = instance_of(root)
    (dead,) = instance.get_runs()
    assert dead.status == dg.DagsterRunStatus.STARTED and slot_holders(instance)

    rc = run_demo(root, tmp_path / "next.log", timeout_s=240, POWERSYNC_POOL_WAIT_S="60")
    out = (tmp_path / "next.log").read_text()
    assert rc == 0, out
    assert f"run {dead.run_id} was left running by a process that died" in out
    instance = instance_of(root)
    statuses = {r.run_id: r.status for r in instance.get_runs()}
    assert statuses.pop(dead.run_id) == dg.DagsterRunStatus.FAILURE
    assert list(statuses.values()) == [dg.DagsterRunStatus.SUCCESS]
    assert slot_holders(instance) == set()
