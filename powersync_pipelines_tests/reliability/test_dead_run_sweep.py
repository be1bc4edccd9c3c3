"""Which runs the startup sweep fails: only those whose process is known and gone (a dead pid, or a pid reused by
a process that started later); live runs, other hosts' runs and untagged not-yet-started runs are left alone."""

from __future__ import annotations

import shutil
import socket
import subprocess
import uuid
from pathlib import Path

import dagster as dg
import pytest

from powersync_pipelines.defs.dead_runs import (
    TAG_HOST,
    TAG_PID,
    TAG_STARTED,
    dead_run_sweep,
    process_started,
    sweep_dead_runs,
)
from powersync_pipelines.paths import REPO_ROOT

from .runs import instance_of


@pytest.fixture
def instance(tmp_path: Path) -> dg.DagsterInstance:
    (tmp_path / "dagster").mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", tmp_path / "dagster" / "dagster.yaml")
    return instance_of(tmp_path)


def _run(instance: dg.DagsterInstance, status: dg.DagsterRunStatus, tags: dict[str, str]) -> str:
    run_id = str(uuid.uuid4())
    instance.add_run(dg.DagsterRun(job_name="__ASSET_JOB", run_id=run_id, status=status, tags=tags))
    return run_id


def _tags(pid: int, started: float | None, host: str | None = None) -> dict[str, str]:
    tags = {TAG_PID: str(pid), TAG_HOST: host or socket.gethostname()}
    if started is not None:
        tags[TAG_STARTED] = f"{started:.2f}"
    return tags


def test_the_sweep_fails_only_runs_whose_process_is_gone(instance: dg.DagsterInstance) -> None:
    gone = subprocess.Popen(["true"])
    gone_started = process_started(gone.pid)
    gone.wait()
    live = subprocess.Popen(["sleep", "600"])
    try:
        dead_started = _run(instance, dg.DagsterRunStatus.STARTED, _tags(gone.pid, gone_started))
        dead_not_started = _run(instance, dg.DagsterRunStatus.NOT_STARTED, _tags(gone.pid, gone_started))
        reused_pid = _run(instance, dg.DagsterRunStatus.STARTED, _tags(live.pid, process_started(live.pid) - 60))
        alive = _run(instance, dg.DagsterRunStatus.STARTED, _tags(live.pid, process_started(live.pid)))
        other_host = _run(instance, dg.DagsterRunStatus.STARTED, _tags(gone.pid, gone_started, host="elsewhere"))
        launcher_owned = _run(instance, dg.DagsterRunStatus.NOT_STARTED, {})
        instance.event_log_storage.initialize_concurrency_limit_to_default("duckdb_history")
        assert instance.event_log_storage.claim_concurrency_slot("duckdb_history", dead_started, "s").is_claimed

        swept = sweep_dead_runs(instance)

        assert sorted(swept) == sorted([dead_started, dead_not_started, reused_pid])
        status = {r.run_id: r.status for r in instance.get_runs()}
        assert {status[r] for r in swept} == {dg.DagsterRunStatus.FAILURE}
        assert status[alive] == status[other_host] == dg.DagsterRunStatus.STARTED
        assert status[launcher_owned] == dg.DagsterRunStatus.NOT_STARTED
        assert instance.event_log_storage.get_concurrency_info("duckdb_history").claimed_slots == []
        assert sweep_dead_runs(instance) == []  # idempotent
    finally:
        live.kill()
        live.wait()


def test_the_daemon_sensor_sweeps_a_dead_run_worker(instance: dg.DagsterInstance) -> None:
    """While ``powersync ui`` runs, the sensor fails a run whose worker died so the next scheduled run is not
    blocked on its slot."""
    gone = subprocess.Popen(["true"])
    started = process_started(gone.pid)
    gone.wait()
    dead = _run(instance, dg.DagsterRunStatus.STARTED, _tags(gone.pid, started))
    instance.event_log_storage.initialize_concurrency_limit_to_default("duckdb_history")
    assert instance.event_log_storage.claim_concurrency_slot("duckdb_history", dead, "s").is_claimed

    result = dead_run_sweep.evaluate_tick(dg.build_sensor_context(instance=instance))

    assert dead in (result.skip_message or "")
    assert instance.get_run_by_id(dead).status == dg.DagsterRunStatus.FAILURE
    assert instance.event_log_storage.get_concurrency_info("duckdb_history").claimed_slots == []
    again = dead_run_sweep.evaluate_tick(dg.build_sensor_context(instance=instance))
    assert again.skip_message == "no dead runs"
