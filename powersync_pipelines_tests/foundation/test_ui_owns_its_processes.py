"""`powersync ui` owns its processes: stopped with SIGTERM or SIGINT, it leaves no child process alive and
nothing listening on its ports (Dagster webserver, the homeowner's page)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import psutil
import pytest

from powersync_pipelines.paths import REPO_ROOT
from powersync_pipelines_tests.homeassistant.broker import free_port
from powersync_pipelines_tests.webui.servers import home_env, wait_http

pytestmark = pytest.mark.timeout(1200)  # dagster dev starting on a shared 2-core machine


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_ui_stops_everything_it_started(tmp_path, sig):
    port, web_port = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "powersync_pipelines.cli", "ui", "--port", str(port),
                             "--web-port", str(web_port), "--ocpp-port", "0"], env=home_env(tmp_path),
                            cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/server_info", proc, "powersync ui (Dagster)")
        wait_http(f"http://127.0.0.1:{web_port}/static/plotly.js", proc, "powersync ui (homeowner page)")
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 3  # the page, dagster dev, and dagster dev's webserver / daemon / code server
        proc.send_signal(sig)
        assert proc.wait(timeout=120) in (0, 130, -sig)
        gone, alive = psutil.wait_procs(children, timeout=30)
        assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], [p.cmdline() for p in alive]
        assert not _listening(port) and not _listening(web_port)
    finally:
        if proc.poll() is None:
            proc.kill()
