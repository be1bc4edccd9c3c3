"""``powersync simulate sungrow|sigenergy|tesla --port N``: a battery peer on loopback, in the foreground;
``powersync simulate ocpp-cp --url ws://HOST:PORT/<id>``: an OCPP 1.6J charge point with a car, connecting out."""

from __future__ import annotations

import argparse
import contextlib
import sys

HELP = "Run a battery simulator (Modbus/HTTP peer) in the foreground"
KINDS = ("sungrow", "sigenergy", "tesla", "ocpp-cp")


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
    parser.add_argument("--url", help="ocpp-cp: the central system's ws://HOST:PORT/<charge_point_id>")
    parser.add_argument("--car-kwh", type=float, default=60.0, help="ocpp-cp: the car's battery (kWh; --soc is its SOC)")
    parser.add_argument("--amps", type=float, default=32.0, help="ocpp-cp: the charge point's rated current per phase")
    parser.add_argument("--phases", type=int, choices=(1, 3), default=1, help="ocpp-cp: phases")
    parser.add_argument("--unplugged", action="store_true", help="ocpp-cp: start with no car plugged in")


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


def _run_ocpp_cp(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from ..sim.ocpp_cp import SimCar, SimulatedChargePoint

    if not args.url or not args.url.startswith(("ws://", "wss://")):
        return _fail("ocpp-cp needs --url ws://HOST:PORT/<charge_point_id>")
    if args.car_kwh <= 0 or args.amps < 6:
        return _fail("--car-kwh must be positive and --amps at least 6")
    try:
        sim = SimulatedChargePoint(args.url, car=SimCar(battery_kwh=args.car_kwh, soc=args.soc, max_amps=args.amps),
                                   plugged=not args.unplugged, max_amps=args.amps, phases=args.phases,
                                   time_scale=args.time_scale)
    except ValueError as exc:
        return _fail(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("ocpp").setLevel(logging.WARNING)
    print(f"simulated charge point {sim.charge_point_id!r} connecting to {args.url} (Ctrl-C to stop)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(sim.run())
    return 0


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.soc <= 1:
        return _fail(f"--soc {args.soc} must be a fraction between 0 and 1")
    if args.port is not None and not 0 <= args.port <= 65535:
        return _fail(f"--port {args.port} is not a TCP port")
    if args.capacity_kwh <= 0 or args.max_kw <= 0 or args.time_scale < 0:
        return _fail("--capacity-kwh and --max-kw must be positive, --time-scale non-negative")
    if args.kind == "ocpp-cp":
        return _run_ocpp_cp(args)
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
