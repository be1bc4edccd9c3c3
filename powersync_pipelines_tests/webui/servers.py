"""Real local servers for the page and browser tests: a demo run on a temp POWERSYNC_HOME, `powersync web` and a
Dagster webserver on free ports, each in its own process group and stopped at the end."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from powersync_pipelines.paths import REPO_ROOT
from powersync_pipelines_tests.homeassistant.broker import free_port

DEMO_NOW = "2024-02-12T20:00:00Z"  # the demo site's replay start: the page shows the plan the demo made


def home_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "POWERSYNC_SITES", "POWERSYNC_DUCKDB")}
    env["POWERSYNC_HOME"] = str(home)
    env["DAGSTER_HOME"] = str(home / "dagster")
    return env


def run_demo(home: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "powersync_pipelines.cli", "demo"], capture_output=True, text=True,
                         env=home_env(home), cwd=REPO_ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]


def wait_http(url: str, proc: subprocess.Popen, what: str, limit_s: float = 600) -> None:
    """Poll ``url`` until it answers 200 (a generous bound for a loaded machine; a dead process fails at once)."""
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode} before serving {url}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=10).status_code == 200:
                return
        time.sleep(0.5)
    raise AssertionError(f"{what} did not serve {url}")


def stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def web(home: Path, dagster_url: str | None = None) -> Iterator[str]:
    """`powersync web` on the demo's history, pinned to the demo's instant; yields its base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "powersync_pipelines.cli", "web", "--port", str(port), "--now", DEMO_NOW]
    proc = subprocess.Popen(cmd + (["--dagster-url", dagster_url] if dagster_url else []), env=home_env(home),
                            cwd=REPO_ROOT, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/api/site/demo", proc, "powersync web")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


@contextlib.contextmanager
def dagster_webserver(home: Path) -> Iterator[str]:
    """A real Dagster webserver on the demo's DAGSTER_HOME; yields its base URL."""
    port = free_port()
    exe = Path(sys.executable).parent / "dagster-webserver"
    proc = subprocess.Popen([str(exe), "-w", str(REPO_ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
                            env=home_env(home), cwd=str(home / "dagster"), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/server_info", proc, "dagster-webserver")
        # what the first visit's "Join the Dagster community" dialog's Skip does: the instance remembers it
        seen = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": "mutation { setNuxSeen }"}, timeout=60)
        assert seen.status_code == 200 and "errors" not in seen.json(), seen.text
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)
