"""The Dagster instance the commands that run jobs share: prepared once, swept of dead runs, guarded while it runs.

Three failure modes this module exists for:

* **Concurrent first start.** Two commands on a fresh ``$DAGSTER_HOME`` would both create the SQLite storages and
  stamp their alembic versions, which can leave ``runs.db`` with two heads for good. :func:`prepared_instance`
  creates (and migrates) the instance under an exclusive ``fcntl`` lock on a file of its own in the home, so the
  first process initialises and the others open finished storage. The lock is independent of what
  ``dagster.yaml`` selects (SQLite or PostgreSQL).
* **A run whose process died** (kill -9, OOM, power cut) stays STARTED and keeps its pool slots, so the next run
  of a step in that pool waits forever: :func:`prepared_instance` sweeps such runs (``defs/dead_runs.py``) before
  the command starts its own.
* **A step blocked on a pool** makes Dagster's in-process executor spin (it polls the claim with no sleep) and
  swallow SIGINT/SIGTERM. :class:`PoolWaitGuard` watches the run from a thread: after ``max_wait_s`` blocked, or on
  a signal while blocked, it records the run FAILURE (timeout) or CANCELED (signal) and interrupts it the way
  Dagster interrupts a step, so its pending claims are released and the command exits with a message naming who
  holds the slot.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._core.errors import DagsterExecutionInterruptedError
from dagster._utils.interrupts import check_captured_interrupt

from ..defs.dead_runs import TAG_PID, sweep_dead_runs
from ..paths import ensure_dagster_home

LOCK_FILE = ".powersync-init.lock"
# the Dagster modules whose code runs the in-process executor's wait for a pool slot
_POLLING_LOOP_FILES = (os.path.join("execution", "plan", "active.py"),
                       os.path.join("execution", "plan", "instance_concurrency_context.py"))
# A blocked step waits this long for a live run to release its pool slot before the command gives up.
DEFAULT_POOL_WAIT_S = 120.0


@contextlib.contextmanager
def home_lock(home: Path) -> Iterator[None]:
    """Exclusive advisory lock on ``home/.powersync-init.lock``; blocks until the holder releases it."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / LOCK_FILE, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def prepared_instance() -> tuple[dg.DagsterInstance, list[str]]:
    """``$DAGSTER_HOME`` created, its storage initialised by one process at a time, dead runs swept.

    Returns the instance and the ids of the runs the sweep marked failed (for the command to report).
    """
    home = ensure_dagster_home()
    with home_lock(home):
        instance = dg.DagsterInstance.get()
        # touching each storage creates (and migrates) its tables now, inside the lock, not lazily on first use
        instance.run_storage.get_runs_count()
        instance.event_log_storage.get_concurrency_keys()
        if instance.schedule_storage is not None:
            instance.schedule_storage.all_instigator_state()
        prepare_pools(instance)
        swept = sweep_dead_runs(instance)
    return instance, swept


JOB_POOLS = ("duckdb_history", "modbus", "ev_charger", "battery")
"""The pools the project's assets and ops claim (``pool=`` in ``defs/``)."""
PARALLEL_POOLS_ON_POSTGRES = {"duckdb_history": 4, "modbus": 4}
"""On PostgreSQL the server takes concurrent writers and each shard run drives its own sites' batteries, so these
pools admit as many runs as the ``powersync/planning_shard`` run limit in ``dagster.yaml`` (4); on the DuckDB file
they keep ``pools: default_limit`` (1): one writer."""


def prepare_pools(instance: dg.DagsterInstance) -> None:
    """Create every pool's limit once, before any run claims it (runs that create a new pool's row at the same time
    on PostgreSQL can fail one of them). A pool that already has a limit keeps it: an operator's
    ``dagster instance concurrency set`` stands."""
    from ..paths import DATABASE_URL_ENV
    from ..storage.backend import is_postgres_url

    storage = instance.event_log_storage
    known = storage.get_concurrency_keys()
    on_postgres = is_postgres_url(os.environ.get(DATABASE_URL_ENV) or "")
    for pool in JOB_POOLS:
        if pool in known:
            continue
        if on_postgres and pool in PARALLEL_POOLS_ON_POSTGRES:
            storage.set_concurrency_slots(pool, PARALLEL_POOLS_ON_POSTGRES[pool])
        else:
            storage.initialize_concurrency_limit_to_default(pool)


# -- a blocked step never spins forever --------------------------------------------------------------------------
@dataclass
class Blocked:
    """Why the guard stopped a run."""

    reason: str  # "timeout" | "signal"
    run_id: str
    pool: str
    step: str
    waited_s: float
    holders: list[str]


class PoolWaitGuard:
    """Watches this process's run; stops it when a step stays blocked on a pool too long or a signal arrives.

    Use as a context manager around ``dg.materialize(..., tags=dead_runs.process_tags())`` in the main thread. After it
    exits, ``blocked`` says whether (and why) the run was stopped.
    """

    def __init__(self, instance: dg.DagsterInstance, max_wait_s: float | None = None, poll_s: float = 0.5) -> None:
        env = os.environ.get("POWERSYNC_POOL_WAIT_S")
        self.max_wait_s = max_wait_s if max_wait_s is not None else float(env) if env else DEFAULT_POOL_WAIT_S
        self.instance, self.poll_s = instance, poll_s
        self.blocked: Blocked | None = None
        self._stop = threading.Event()
        self._main = threading.main_thread().ident
        self._thread = threading.Thread(target=self._watch, name="pool-wait-guard", daemon=True)

    def __enter__(self) -> PoolWaitGuard:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _own_pending(self) -> tuple[str, str, str, list[str]] | None:
        """(run id, pool, step, holder run ids) of a step of this process's run waiting for a slot, if any."""
        storage = self.instance.event_log_storage
        mine = {r.dagster_run.run_id for r in self.instance.get_run_records(
            filters=dg.RunsFilter(tags={TAG_PID: str(os.getpid())}, statuses=[dg.DagsterRunStatus.STARTED]),
            limit=5)}
        if not mine:
            return None
        for pool in storage.get_concurrency_keys():
            info = storage.get_concurrency_info(pool)
            claimed = {(c.run_id, c.step_key) for c in info.claimed_slots}
            for pending in info.pending_steps:
                if pending.run_id in mine and (pending.run_id, pending.step_key) not in claimed:
                    holders = sorted({c.run_id for c in info.claimed_slots if c.run_id not in mine})
                    return pending.run_id, pool, pending.step_key, holders
        return None

    def _watch(self) -> None:
        since: float | None = None
        while not self._stop.wait(self.poll_s):
            try:
                pending = self._own_pending()
            except Exception:  # noqa: BLE001 - a storage hiccup must not kill the watcher; try again next poll
                continue
            if pending is None:
                since = None
                continue
            since = since if since is not None else time.monotonic()
            waited = time.monotonic() - since
            reason = "signal" if check_captured_interrupt() else "timeout" if waited >= self.max_wait_s else None
            if reason is not None:
                run_id, pool, step, holders = pending
                self.blocked = Blocked(reason, run_id, pool, step, waited, holders)
                self._interrupt_main(run_id)
                return

    def _interrupt_main(self, run_id: str) -> None:
        """End the run with the reason recorded, then raise Dagster's execution interrupt in the main thread.

        Recording first (FAILURE for a timeout, CANCELED for a signal) makes Dagster treat the interrupt as
        expected: the run's own message says why, and no interrupt traceback is logged.
        """
        run = self.instance.get_run_by_id(run_id)
        if run is not None:
            if self.blocked is not None and self.blocked.reason == "signal":
                self.instance.report_run_canceled(run, message=self.message())
            else:
                self.instance.report_run_failed(run, message=self.message())
        # Deliver it while the main thread is in the executor's polling loop, not inside a storage write the
        # loop makes now and then (an exception there would leave Dagster logging a half-written event).
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            frame = sys._current_frames().get(self._main)
            if frame is not None and frame.f_code.co_filename.endswith(_POLLING_LOOP_FILES):
                break
            time.sleep(0.005)
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._main),
                                                   ctypes.py_object(DagsterExecutionInterruptedError))

    def message(self) -> str:
        """One line for stderr about why the run stopped."""
        b = self.blocked
        if b is None:
            return ""
        held = ", ".join(b.holders) or "no run (the slot was released as the guard stopped)"
        why = "stopped by a signal" if b.reason == "signal" else f"gave up after {b.waited_s:.0f} s"
        return (f"error: step {b.step} waited for a slot of pool {b.pool} held by run {held}; {why}. The holder "
                f"is alive: wait for it to finish, or stop it (POWERSYNC_POOL_WAIT_S sets the wait).")
