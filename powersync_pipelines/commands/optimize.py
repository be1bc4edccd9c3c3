"""``powersync optimize``: solve one problem JSON and write the schedule JSON (the issue-5 contract)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "Solve a battery schedule for a problem JSON"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--problem", required=True, help="problem JSON (start, prices, solar, load, battery, limits)")
    parser.add_argument("--out", required=True, help="where to write the schedule JSON")
    parser.add_argument("--horizon", choices=["full", "tiered"], default="full", help="LP grid (default: full)")
    parser.add_argument("--solver", choices=["lp", "greedy"], default="lp", help="solver (default: lp)")
    parser.add_argument("--time-limit", type=float, default=60.0,
                        help="last-resort wall-clock limit in seconds before the greedy fallback (work limits bound "
                             "every normal solve, so the plan does not depend on how busy the machine is)")


def run(args: argparse.Namespace) -> int:
    from powersync_pipelines.optimizer import OptimizationProblem, ProblemError, solve

    path = Path(args.problem)
    try:
        raw = json.loads(path.read_text())
    except OSError as e:
        print(f"optimize: cannot read problem {path}: {e.strerror}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as e:
        print(f"optimize: problem {path} is not valid JSON: {e.msg} at line {e.lineno}", file=sys.stderr)
        return 2
    try:
        problem = OptimizationProblem.from_dict(raw)
        result = solve(problem, horizon=args.horizon, solver=args.solver, time_limit_s=args.time_limit)
    except ProblemError as e:
        print(f"optimize: invalid problem {path}: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result.to_dict(), allow_nan=False))
    print(
        f"{result.status}: cost {result.cost:.4f} vs baseline {result.baseline_cost:.4f} "
        f"(self-consumption {result.self_consumption_cost:.4f}), {len(result.intervals)} intervals, "
        f"{result.solve_ms:.1f} ms → {out}"
    )
    return 0
