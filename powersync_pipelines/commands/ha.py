"""``powersync ha serve [--sites F] --broker mqtt://[user@]HOST:PORT [--discovery-prefix homeassistant] [--once]``.

Publishes every site of the sites file to Home Assistant over MQTT discovery (``homeassistant/bridge.py``).
``--once`` publishes configs, states and forecasts, waits for the broker's acknowledgement and exits (for
cron; the entities stay available with the retained states). Without it the bridge serves HA's commands,
republishes states every ``--interval`` seconds and after each new stored plan, and marks itself offline
when stopped. Credentials and TLS come from ``POWERSYNC_MQTT_USERNAME`` / ``POWERSYNC_MQTT_PASSWORD`` /
``POWERSYNC_MQTT_TLS`` / ``POWERSYNC_MQTT_CA_FILE``, never from the sites file or the command line.
Exit codes: 0 done (or stopped), 1 broker unreachable or refusing, 2 invalid input.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

HELP = "Publish sites to Home Assistant over MQTT discovery and take HA's commands (ha serve)"
ENV_BROKER = "POWERSYNC_MQTT_BROKER"  # mqtt://[user@]HOST:PORT: ``powersync ui`` starts the bridge when set


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="ha_command", metavar="ACTION", required=True)
    serve = sub.add_parser("serve", help="connect to the broker, publish every site and serve HA's commands",
                           description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("--sites", default=None, help="sites file (default: $POWERSYNC_SITES or the demo)")
    serve.add_argument("--broker", required=True, metavar="URL",
                       help="mqtt://[user@]HOST:PORT (mqtts:// for TLS); password from $POWERSYNC_MQTT_PASSWORD")
    serve.add_argument("--discovery-prefix", default="homeassistant",
                       help="HA's MQTT discovery prefix (default homeassistant)")
    serve.add_argument("--once", action="store_true", help="publish everything once and exit")
    serve.add_argument("--interval", type=float, default=60.0,
                       help="seconds between state republishes when serving (default 60)")
    serve.add_argument("--site-id", default=None, help="only this site")


def _fail(msg: str, rc: int = 2) -> int:
    print(f"powersync ha serve: {msg}", file=sys.stderr)
    return rc


def run(args: argparse.Namespace) -> int:
    from ..config import SiteConfigError, load_sites
    from ..control.clock import Clock
    from ..control.context import ControlContext
    from ..homeassistant.bridge import Bridge, BridgeError, BrokerConfig
    from ..storage import HistoryStore

    if not args.interval > 0:
        return _fail(f"--interval must be > 0 seconds, got {args.interval:g}")
    try:
        sites = load_sites(args.sites)
        chosen = [sites.get(args.site_id)] if args.site_id else sites.sites
        broker = BrokerConfig.from_url(args.broker)
        clock = Clock(fixed=os.environ.get("POWERSYNC_FIXED_NOW"))  # the same pinned instant as the pipeline's
        bridge = Bridge(chosen, ControlContext(HistoryStore(), clock), broker, args.discovery_prefix)
    except (SiteConfigError, BridgeError, ValueError) as exc:
        return _fail(str(exc).replace("\n", " "))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        bridge.connect()
    except BridgeError as exc:
        return _fail(str(exc), 1)
    if args.once:
        try:
            n = bridge.once()
        except BridgeError as exc:
            bridge.close(offline=False)
            return _fail(str(exc), 1)
        bridge.close(offline=False)
        print(f"published {n} messages for {len(chosen)} site(s) to {broker.describe()} "
              f"(discovery prefix {args.discovery_prefix})")
        return 0
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        bridge.serve(stop, interval=args.interval)
    except KeyboardInterrupt:
        pass
    finally:
        try:
            bridge.close(offline=True)
        except BridgeError as exc:
            print(f"powersync ha serve: {exc}", file=sys.stderr)
    return 0


def bridge_process(sites_path: str | Path, env: Mapping[str, str]) -> subprocess.Popen | None:
    """``powersync ha serve`` for ``powersync ui`` as a child in its own process group, when ``env`` names a
    broker in ``POWERSYNC_MQTT_BROKER``; None otherwise. The bridge inherits ``env`` (the simulated devices'
    endpoints, the MQTT credentials), so HA's buttons drive the same batteries as the UI."""
    broker = env.get(ENV_BROKER, "").strip()
    if not broker:
        return None
    from ..homeassistant.bridge import BridgeError, BrokerConfig

    try:
        shown = BrokerConfig.from_url(broker, env).describe()
    except BridgeError as exc:  # the UI still starts; the bridge is named as not running, and why
        print(f"Home Assistant bridge not started: {ENV_BROKER}: {exc}", file=sys.stderr)
        return None
    proc = subprocess.Popen([sys.executable, "-m", "powersync_pipelines.cli", "ha", "serve", "--sites",
                             str(sites_path), "--broker", broker], env=dict(env), start_new_session=True)
    print(f"Home Assistant bridge to {shown} (MQTT discovery prefix homeassistant)")
    return proc
