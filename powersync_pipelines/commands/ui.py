"""``powersync ui``: the simulated batteries plus ``dagster dev`` (webserver + daemon) on loopback; with an OCPP
charger in the sites file, also the OCPP central system and a simulated charge point for it."""

from __future__ import annotations

import argparse
import contextlib
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
    parser.add_argument("--ocpp-port", type=int, default=9000,
                        help="OCPP central system port when a site has an ocpp charger (default 9000; 0 = none)")


def _ev_processes(sites, port: int, env: dict[str, str]) -> list[subprocess.Popen]:  # noqa: ANN001 - SitesFile
    """`powersync ocpp serve` for the sites' OCPP chargers, and a simulated charge point for each of them."""
    cps = [s.ev.charge_point_id for s in sites.sites if s.ev is not None and s.ev.charger == "ocpp"]
    if not cps or port <= 0:
        return []
    exe = [sys.executable, "-m", "powersync_pipelines.cli"]
    procs = [subprocess.Popen([*exe, "ocpp", "serve", "--sites", str(sites.path), "--port", str(port)], env=env,
                              start_new_session=True)]
    print(f"OCPP central system on ws://127.0.0.1:{port}/<charge_point_id> ({', '.join(cps)})")
    for cp in cps:
        procs.append(subprocess.Popen([*exe, "simulate", "ocpp-cp", "--url", f"ws://127.0.0.1:{port}/{cp}"], env=env,
                                      start_new_session=True))
        print(f"simulated charge point {cp!r} with a car plugged in")
    return procs


def _stop_all(procs: list[subprocess.Popen]) -> None:
    import signal

    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def run(args: argparse.Namespace) -> int:
    from ..config import SiteConfigError, load_sites
    from ..paths import REPO_ROOT
    from ..sim.site_devices import simulated_devices
    from .instance import prepared_instance

    try:
        sites = load_sites(args.sites)
    except SiteConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    env["POWERSYNC_SITES"] = str(sites.path)
    # storage created under the home's lock and runs of dead processes swept before the daemon starts any run
    _, swept = prepared_instance()
    for run_id in swept:
        print(f"run {run_id} was left running by a process that died: marked failed, its pool slots freed")
    home = os.environ["DAGSTER_HOME"]
    env["DAGSTER_HOME"] = home
    dagster = shutil.which("dagster", path=os.path.dirname(sys.executable)) or "dagster"
    ev_procs = _ev_processes(sites, args.ocpp_port, env)
    with contextlib.ExitStack() as stack:
        stack.callback(_stop_all, ev_procs)
        endpoints = stack.enter_context(simulated_devices(sites.sites))
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
