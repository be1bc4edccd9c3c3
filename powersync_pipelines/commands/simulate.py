"""``powersync simulate sungrow|sigenergy|tesla --port N``: a battery peer on loopback, in the foreground."""

from __future__ import annotations

import argparse
import sys

HELP = "Run a battery simulator (Modbus/HTTP peer) in the foreground"
KINDS = ("sungrow", "sigenergy", "tesla")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=KINDS, help="which system to simulate")
    parser.add_argument("--port", type=int, default=None,
                        help="TCP port on 127.0.0.1 (default: 1502 sungrow, 1503 sigenergy, 8765 tesla; 0 = any free)")
    parser.add_argument("--soc", type=float, default=0.5, help="initial SOC as a fraction 0-1 (default 0.5)")
    parser.add_argument("--capacity-kwh", type=float, default=13.5)
    parser.add_argument("--max-kw", type=float, default=5.0, help="rated charge and discharge power")
    parser.add_argument("--load-kw", type=float, default=0.8, help="constant house load")
    parser.add_argument("--solar-kw", type=float, default=0.0, help="constant solar output")
    parser.add_argument("--time-scale", type=float, default=1.0, help="simulated seconds per real second")
    parser.add_argument("--token", default=None,
                        help="tesla: bearer token the server accepts (default: $POWERSYNC_TESLA_SIM_TOKEN or 'sim-token')")
    parser.add_argument("--rate-limit", type=int, default=None, help="tesla: calls per 60 s before HTTP 429")


def _fail(msg: str) -> int:
    print(f"powersync simulate: {msg}", file=sys.stderr)
    return 2


def build(args: argparse.Namespace):  # noqa: ANN201 - one of three simulator classes
    common = {"capacity_kwh": args.capacity_kwh, "soc": args.soc, "max_charge_kw": args.max_kw,
              "max_discharge_kw": args.max_kw, "load_kw": args.load_kw, "solar_kw": args.solar_kw,
              "time_scale": args.time_scale}
    if args.kind == "sungrow":
        from ..sim.sungrow_sh import SungrowSimulator

        return SungrowSimulator(port=1502 if args.port is None else args.port, **common)
    if args.kind == "sigenergy":
        from ..sim.sigenergy import SigenergySimulator

        return SigenergySimulator(port=1503 if args.port is None else args.port, **common)
    import os

    from ..sim.tesla import TeslaSimulator

    token = args.token or os.environ.get("POWERSYNC_TESLA_SIM_TOKEN") or "sim-token"
    return TeslaSimulator(port=8765 if args.port is None else args.port, token=token,
                          rate_limit_per_minute=args.rate_limit, **common)


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.soc <= 1:
        return _fail(f"--soc {args.soc} must be a fraction between 0 and 1")
    if args.port is not None and not 0 <= args.port <= 65535:
        return _fail(f"--port {args.port} is not a TCP port")
    if args.capacity_kwh <= 0 or args.max_kw <= 0 or args.time_scale < 0:
        return _fail("--capacity-kwh and --max-kw must be positive, --time-scale non-negative")
    try:
        sim = build(args)
        sim.start()
    except (OSError, RuntimeError) as exc:
        return _fail(f"cannot start the {args.kind} simulator: {exc}")
    print(f"{args.kind} simulator listening on 127.0.0.1:{sim.port} (Ctrl-C to stop)", flush=True)
    try:
        sim.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0
