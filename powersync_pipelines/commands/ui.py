"""``powersync ui``: the simulated batteries plus ``dagster dev`` (webserver + daemon) on loopback."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys

HELP = "Start the Dagster UI + daemon with the demo site, the simulator and the schedules running"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sites", help="sites YAML (default $POWERSYNC_SITES or data/sites.yaml)")
    parser.add_argument("--port", type=int, default=3000, help="webserver port (default 3000)")
    parser.add_argument("--host", default="127.0.0.1")


def run(args: argparse.Namespace) -> int:
    from ..config import SiteConfigError, load_sites
    from ..paths import REPO_ROOT, ensure_dagster_home
    from ..sim.site_devices import simulated_devices

    try:
        sites = load_sites(args.sites)
    except SiteConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    env["POWERSYNC_SITES"] = str(sites.path)
    home = str(ensure_dagster_home())
    env["DAGSTER_HOME"] = home
    dagster = shutil.which("dagster", path=os.path.dirname(sys.executable)) or "dagster"
    with simulated_devices(sites.sites) as endpoints:
        env["POWERSYNC_ENDPOINTS"] = json.dumps(endpoints)
        for sid, ep in endpoints.items():
            print(f"simulated battery for {sid!r} on {ep}")
        print(f"Dagster UI on http://{args.host}:{args.port} (DAGSTER_HOME={home}); Ctrl-C stops everything")
        proc = subprocess.Popen(
            [dagster, "dev", "-w", str(REPO_ROOT / "workspace.yaml"), "-h", args.host, "-p", str(args.port)],
            cwd=REPO_ROOT, env=env, start_new_session=True,
        )
        try:
            return proc.wait()
        except KeyboardInterrupt:
            import signal

            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
            return 130
