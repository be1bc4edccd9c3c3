"""A step blocked on a pool slot that a *live* run holds waits a bounded time, then the demo ends with a message
naming the holder; SIGINT or SIGTERM while blocked ends it too. Dagster's in-process executor alone spins on the claim and
swallows SIGINT and SIGTERM (issue 31, finding 1)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from powersync_pipelines.defs.dead_runs import TAG_HOST, TAG_PID, TAG_STARTED, process_started
from powersync_pipelines.paths import REPO_ROOT

from .runs import instance_of, run_demo, slot_holders, start_demo, wait_until


@pytest.fixture
def held_pool(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A home whose duckdb_history slot is held by a STARTED run of a live process (a sleeping child)."""
    root = tmp_path / "home"
    (root / "dagster").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "dagster.yaml", root / "dagster" / "dagster.yaml")
    holder = subprocess.Popen(["sleep", "600"])
    instance = instance_of(root)
    run_id = str(uuid.uuid4())

    instance.add_run(dg.DagsterRun(job_name="__ASSET_JOB", run_id=run_id, status=dg.DagsterRunStatus.STARTED,
                                   tags={TAG_PID: str(holder.pid), TAG_HOST: socket.gethostname(),
                                         TAG_STARTED: f"{process_started(holder.pid):.2f}"}))
    instance.event_log_storage.initialize_concurrency_limit_to_default("duckdb_history")
    assert instance.event_log_storage.claim_concurrency_slot("duckdb_history", run_id, "holder_step").is_claimed
    yield root, run_id
    holder.kill()
    holder.wait()


def _own_runs(root: Path, holder: str) -> list[dg.DagsterRun]:
    return [r for r in instance_of(root).get_runs() if r.run_id != holder]


def test_a_step_blocked_by_a_live_holder_gives_up_with_a_message(held_pool, tmp_path: Path) -> None:
    root, holder = held_pool
    log = tmp_path / "demo.log"
    rc = run_demo(root, log, timeout_s=180, POWERSYNC_POOL_WAIT_S="2")
    out = log.read_text()
    assert rc == 3, out
    assert "waited for a slot of pool duckdb_history" in out and holder in out
    assert "Traceback" not in out and "Stack Trace" not in out
    instance = instance_of(root)
    mine = _own_runs(root, holder)
    assert [r.status for r in mine] == [dg.DagsterRunStatus.FAILURE]
    # the live holder keeps its slot; the stopped run leaves no pending claim behind
    assert slot_holders(instance) == {(holder, "holder_step")}
    assert mine[0].run_id not in instance.event_log_storage.get_concurrency_run_ids()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_a_demo_blocked_on_a_pool(held_pool, tmp_path: Path, signum: int) -> None:
    root, holder = held_pool
    proc = start_demo(root, tmp_path / "demo.log", POWERSYNC_POOL_WAIT_S="600")
    try:
        storage = instance_of(root).event_log_storage
        blocked = wait_until(lambda: any(p.run_id != holder for p in
                                         storage.get_concurrency_info("duckdb_history").pending_steps), 120)
        assert blocked, (tmp_path / "demo.log").read_text()
        proc.send_signal(signum)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = (tmp_path / "demo.log").read_text()
    assert rc == 130, out
    assert "stopped by a signal" in out
    assert "Traceback" not in out and "Stack Trace" not in out
    assert [r.status for r in _own_runs(root, holder)] == [dg.DagsterRunStatus.CANCELED]
