"""``powersync ui``: the simulated batteries, ``dagster dev`` (webserver + daemon) and the homeowner's page
(``powersync web``) on loopback; with an OCPP charger in the sites file, also the OCPP central system and a
simulated charge point for it. Every child runs in its own process group; SIGINT and SIGTERM stop them all."""

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
    parser.add_argument("--web-port", type=int, default=3001,
                        help="the homeowner's page port (default 3001; 0 = none)")
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
    """SIGTERM every child's process group (dagster dev stops its webserver, daemon and code server on it), wait,
    then SIGKILL the groups that are still there, so nothing outlives `powersync ui`."""
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the stop short
        signal.signal(sig, signal.SIG_IGN)
    for proc in procs:
        _signal_group(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        _signal_group(proc.pid, signal.SIGKILL)  # grandchildren left in the group once its leader exited


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _web_process(args: argparse.Namespace, sites, env: dict[str, str]) -> list[subprocess.Popen]:  # noqa: ANN001
    """`powersync web` next to Dagster, linking to it (its own process group, stopped with the rest)."""
    if args.web_port <= 0:
        return []
    cmd = [sys.executable, "-m", "powersync_pipelines.cli", "web", "--sites", str(sites.path), "--host", args.host,
           "--port", str(args.web_port), "--dagster-url", f"http://{args.host}:{args.port}"]
    return [subprocess.Popen(cmd, env=env, start_new_session=True)]


def _raise_interrupt(signum: int, frame: object) -> None:
    """SIGTERM is handled as Ctrl-C: the same clean stop of every child process group."""
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    import signal

    from ..config import SiteConfigError, load_sites
    from ..paths import REPO_ROOT
    from ..sim.site_devices import simulated_devices
    from .ha import bridge_process
    from .instance import prepared_instance

    try:
        sites = load_sites(args.sites)
    except SiteConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # first, since it may export the Dagster storage URL the children need: storage created under the home's lock,
    # and runs of dead processes swept before the daemon starts any run
    _, swept = prepared_instance()
    for run_id in swept:
        print(f"run {run_id} was left running by a process that died: marked failed, its pool slots freed")
    home = os.environ["DAGSTER_HOME"]
    env = dict(os.environ)
    env["POWERSYNC_SITES"] = str(sites.path)
    env["DAGSTER_HOME"] = home
    dagster = shutil.which("dagster", path=os.path.dirname(sys.executable)) or "dagster"
    signal.signal(signal.SIGTERM, _raise_interrupt)
    procs: list[subprocess.Popen] = []
    try:
        with contextlib.ExitStack() as stack:
            stack.callback(_stop_all, procs)
            procs += _ev_processes(sites, args.ocpp_port, env)
            endpoints = stack.enter_context(simulated_devices(sites.sites))
            env["POWERSYNC_ENDPOINTS"] = json.dumps(endpoints)
            for sid, ep in endpoints.items():
                print(f"simulated battery for {sid!r} on {ep}")
            procs += _web_process(args, sites, env)
            ha = bridge_process(sites.path, env)  # with $POWERSYNC_MQTT_BROKER: the Home Assistant bridge
            if ha is not None:
                procs.append(ha)
            print(f"Dagster UI on http://{args.host}:{args.port} (DAGSTER_HOME={home}); Ctrl-C stops everything",
                  flush=True)
            # started in DAGSTER_HOME: the instance's dagster.yaml is the one in use (no "will not be used" warning)
            procs.append(subprocess.Popen(
                [dagster, "dev", "-w", str(REPO_ROOT / "workspace.yaml"), "-h", args.host, "-p", str(args.port)],
                cwd=home, env=env, start_new_session=True,
            ))
            return procs[-1].wait()
    except KeyboardInterrupt:
        return 130
