"""Real ``powersync demo`` processes on one home, for the kill -9 and concurrent-start tests and the campaign.

Every helper starts the real CLI in a subprocess (its own session, so a kill takes nothing else with it) against
a home under the test's temp directory; nothing here fakes Dagster or the storage.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from powersync_pipelines.paths import REPO_ROOT


def home_env(root: Path, **extra: str) -> dict[str, str]:
    """The environment of a command on the home under ``root`` (DuckDB, DAGSTER_HOME, demo sites)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERSYNC_", "DAGSTER_"))}
    env.update({"POWERSYNC_HOME": str(root), "DAGSTER_HOME": str(root / "dagster"), "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def start_demo(root: Path, log: Path, **extra: str) -> subprocess.Popen[bytes]:
    with open(log, "wb") as fh:
        return subprocess.Popen([sys.executable, "-m", "powersync_pipelines.cli", "demo"], cwd=REPO_ROOT,
                                env=home_env(root, **extra), stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)


def run_demo(root: Path, log: Path, timeout_s: float = 240, **extra: str) -> int:
    """A demo to completion; a demo still running after ``timeout_s`` is killed and counts as wedged (-9)."""
    proc = start_demo(root, log, **extra)
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return -9


def instance_of(root: Path) -> dg.DagsterInstance:
    """The home's instance, opened from its own dagster.yaml (not this process's $DAGSTER_HOME)."""
    return dg.DagsterInstance.from_config(str(root / "dagster"))


def slot_holders(instance: dg.DagsterInstance, pool: str = "duckdb_history") -> set[tuple[str, str]]:
    """(run id, step) pairs holding a slot of ``pool``."""
    info = instance.event_log_storage.get_concurrency_info(pool)
    return {(c.run_id, c.step_key) for c in info.claimed_slots}


def wait_until(predicate, timeout_s: float, poll_s: float = 0.05) -> bool:  # noqa: ANN001 - any callable
    """Poll for a condition in the product's state (not a timing assertion: the bound only stops a hang)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(poll_s)
    return False
