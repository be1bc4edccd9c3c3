"""Runs whose process died: found by pid (tags this project sets, or the run worker's engine event), failed, slots freed.

A run killed with -9 (or OOM, or a power cut) stays STARTED and keeps its pool slots, so the next run of a step in
that pool waits forever. Every run a powersync command starts carries its pid, host and the process's start time
as tags (:func:`process_tags`); :func:`sweep_dead_runs` marks such runs failed and frees their slots once their
process is gone. Runs launched by a daemon carry the run worker's pid in their "Executing steps in process" /
"Started process for run" engine event; those are swept only on file storage, which lives on this host (the
default run launcher offers no worker health check for Dagster's run monitoring to use).

The commands that run jobs sweep at start (``commands/instance.py``); :data:`dead_run_sweep` sweeps every minute
while the daemon runs (``powersync ui``), so a run worker killed mid-step does not wedge the schedule.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

import dagster as dg
from dagster._core.storage.dagster_run import FINISHED_STATUSES

TAG_PID, TAG_HOST, TAG_STARTED = "powersync/pid", "powersync/host", "powersync/process_started"
_PID_MESSAGES = ("Executing steps in process", "Started process for run")


def process_started(pid: int) -> float | None:
    """The process's start time (epoch seconds) from /proc, or None where /proc is not available."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                     if line.startswith("btime "))
    except (OSError, StopIteration, IndexError, ValueError):
        return None
    return btime + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def process_tags() -> dict[str, str]:
    """Tags that let a later command tell whether the process running a run still exists."""
    started = process_started(os.getpid())
    tags = {TAG_PID: str(os.getpid()), TAG_HOST: socket.gethostname()}
    if started is not None:
        tags[TAG_STARTED] = f"{started:.2f}"
    return tags


def _alive(pid: int, started: float | None, not_after: float | None) -> bool:
    """Whether ``pid`` is the same live process: it exists and (where /proc tells) started when the run says.

    ``started`` is the tagged start time (a reused pid differs by more than a clock tick); ``not_after`` is
    the run's own start time for runs that carry no tag (a process started after its run is a reused pid).
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    actual = process_started(pid)
    if actual is None:
        return True
    if started is not None:
        return abs(actual - started) < 1.0
    return not_after is None or actual <= not_after + 1.0


def _event_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid in the run's "Executing steps in process" / "Started process for run" engine event."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=20).records
    for record in records:
        entry = record.event_log_entry
        if entry.dagster_event is None or not entry.message.startswith(_PID_MESSAGES):
            continue
        meta = getattr(entry.dagster_event.event_specific_data, "metadata", None) or {}
        pid = meta.get("pid")
        with contextlib.suppress(TypeError, ValueError):
            return int(pid.value if hasattr(pid, "value") else pid)
    return None


def _file_storage(instance: dg.DagsterInstance) -> bool:
    return type(instance.run_storage).__name__.startswith("Sqlite")


def run_process_dead(instance: dg.DagsterInstance, record: dg.RunRecord) -> bool:
    """True only when the run's process is known and gone: a run we cannot attribute is left alone."""
    tags = record.dagster_run.tags
    if record.dagster_run.status == dg.DagsterRunStatus.NOT_STARTED and TAG_PID not in tags:
        return False
    if TAG_PID in tags:
        if tags.get(TAG_HOST) != socket.gethostname():
            return False
        started = float(tags[TAG_STARTED]) if TAG_STARTED in tags else None
        return not _alive(int(tags[TAG_PID]), started, None)
    if not _file_storage(instance):
        return False
    pid = _event_pid(instance, record.dagster_run.run_id)
    if pid is None:
        return False
    return not _alive(pid, None, record.start_time or record.create_timestamp.timestamp())


def sweep_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark runs in progress whose process died as failed and free every pool slot a finished run holds.

    NOT_STARTED counts as in progress for runs this project tagged: a process killed between creating its run
    and starting it leaves one behind. Untagged NOT_STARTED runs belong to a launcher and are left to it.

    Returns the ids of the runs it marked failed.
    """
    swept: list[str] = []
    live = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
                                        dg.DagsterRunStatus.STARTED]))
    for record in live:
        run = record.dagster_run
        if run_process_dead(instance, record):
            instance.report_run_failed(
                run, message="The process running this run died (found by the next powersync command's sweep); "
                             "its pool slots were freed.")
            swept.append(run.run_id)
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        holders = storage.get_concurrency_run_ids()
        if holders:
            finished = instance.get_run_records(filters=dg.RunsFilter(run_ids=list(holders),
                                                                      statuses=list(FINISHED_STATUSES)))
            for record in finished:
                storage.free_concurrency_slots_for_run(record.dagster_run.run_id)
    return swept


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Fails runs whose process died (kill -9, OOM) and frees their pool slots, so a dead run "
                       "worker never blocks the next scheduled run on the duckdb_history pool.")
def dead_run_sweep(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    swept = sweep_dead_runs(context.instance)
    return dg.SkipReason(f"marked failed (process gone): {', '.join(swept)}" if swept else "no dead runs")
