"""Run the real ``dagster-daemon`` against a throwaway DAGSTER_HOME, for the end-to-end test and the benchmark.

The daemon runs in its own session (``start_new_session=True``) and is stopped by SIGKILL to the whole process
group: the daemon does not always exit on SIGTERM promptly (reference/dagster.md §5), and the group
kill also takes the code-server and run-worker children with it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ..paths import REPO_ROOT


class DaemonHarness:
    """``dagster-daemon run -w workspace.yaml`` with the repo's dagster.yaml copied into a fresh DAGSTER_HOME."""

    def __init__(self, workdir: Path, sites_file: Path, duckdb_file: Path, env: dict[str, str] | None = None,
                 bytecode_cache: Path | None = None) -> None:
        self.workdir = Path(workdir)
        self.bytecode_cache = bytecode_cache
        self.home = self.workdir / "dagster_home"
        self.sites_file, self.duckdb_file = Path(sites_file), Path(duckdb_file)
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "daemon.log"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERSYNC_", "DAGSTER_"))}
        env.update({
            "DAGSTER_HOME": str(self.home),
            "POWERSYNC_HOME": str(self.workdir / "powersync_home"),
            "POWERSYNC_SITES": str(self.sites_file),
            "POWERSYNC_DUCKDB": str(self.duckdb_file),
            "PYTHONUNBUFFERED": "1",
        })
        if self.bytecode_cache is not None:
            # Production keeps .pyc files; a sandbox with PYTHONDONTWRITEBYTECODE=1 recompiles dagster in every
            # run worker. Caching under a separate prefix measures the production case without touching .venv.
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(self.bytecode_cache)
        env.update(self.extra_env)
        return env

    def start(self) -> DaemonHarness:
        self.home.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / "dagster.yaml", self.home / "dagster.yaml")
        daemon = shutil.which("dagster-daemon", path=os.path.dirname(sys.executable)) or "dagster-daemon"
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.proc = subprocess.Popen(
            [daemon, "run", "-w", str(REPO_ROOT / "workspace.yaml")], cwd=REPO_ROOT, env=self.environment(),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.1) -> float:
        """Poll ``predicate`` until true; returns the seconds waited. Raises with the daemon's log tail."""
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            if predicate():
                return time.monotonic() - start
            if not self.alive():
                raise RuntimeError(f"dagster-daemon exited while waiting for {what}:\n{self.log_tail()}")
            time.sleep(poll_s)
        raise TimeoutError(f"{what} did not happen within {timeout_s:.0f} s; daemon log:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):  # already gone
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
            self.proc = None
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> DaemonHarness:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
