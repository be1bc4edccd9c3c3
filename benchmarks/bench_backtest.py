"""Backtest benchmark: a month and a year of real AEMO VIC1 prices through the replay engine.

Measures (results: ``benchmarks/results/backtest.json``, with the machine they ran on):
1. ``month_lp``: January 2024, the live planner alone (warm tiered LP replan every 5 minutes, persistence
   forecasts). Target: <= 30 s.
2. ``year``: calendar 2024 (site-local months), the live planner (warm LP every 5 minutes) and
   self-consumption, plus the no-battery baseline and the perfect-foresight bound, months spread over
   both cores. Target: <= 10 min for ~105,000 LP replans (>= 175 replans/s). Gives the savings table
   (strategies x months) and the capture ratio per month.
   ``year_with_greedy`` (``BENCH_BACKTEST_GREEDY=1``; ~15 min on a busy 2-core box): the same year with the
   greedy heuristic too (replanned every 30 min); the heuristic is a Python loop (~40 ms per 576-interval
   plan) and dominates that run. Kept from the previous results file when not re-run.
3. ``month_perfect``: January 2024 with perfect forecasts: how close the live planner gets to the bound.
4. ``profile``: where the time goes: the engine's own split (forecast, each planner, battery model,
   perfect-foresight LPs) and a cProfile of two days of LP replans (top functions by own time).

Site: the shipped demo (13.5 kWh / 5 kW battery, 20% reserve, Ausgrid customer 12 load and 1 kWp solar
mapped by calendar day), retail import = 1.1 x (RRP/1000 + 0.12) floored at 0, export = RRP/1000.
Run: ``.venv/bin/python -m benchmarks.bench_backtest`` (or ``make bench``).
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import time
from pathlib import Path

import pandas as pd

from powersync_pipelines.backtest import BacktestConfig, backtest_site, load_data
from powersync_pipelines.backtest.battery import BatterySpec
from powersync_pipelines.backtest.engine import run_backtest
from powersync_pipelines.config import load_sites
from powersync_pipelines.paths import DEFAULT_SITES_FILE, shared_real_data

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = {"month_s": 30.0, "year_s": 600.0, "replans_per_s": 175.0}
MONTH = ("2024-01-01T00:00:00+11:00", "2024-02-01T00:00:00+11:00")
YEAR = ("2024-01-01T00:00:00+11:00", "2025-01-01T00:00:00+11:00")


def _prices() -> list[str]:
    root = shared_real_data()
    if root is None:
        raise SystemExit("bench_backtest needs ../shared/data/real (AEMO VIC1 price-and-demand files)")
    return [str(root / "aemo" / "price_and_demand" / "VIC1")]


def _slim(summary: dict) -> dict:
    keep = ("intervals", "replans", "elapsed_s", "replans_per_s", "baseline_cost", "self_consumption_cost", "cost",
            "perfect_foresight_cost", "savings", "capture_ratio", "forecast_model", "horizon", "workers", "chunks",
            "profile_s", "strategies")
    return {k: summary[k] for k in keep}


def _savings_table(result) -> list[dict]:
    rows = []
    for r in result.monthly.to_dict(orient="records"):
        row = {"month": r["month"], "baseline_cost": round(r["cost_none"], 2)}
        for s in ("self_consumption", "greedy", "lp", "perfect_foresight"):
            if f"savings_{s}" in r:
                row[s] = round(r[f"savings_{s}"], 2)
        row["capture_lp"] = None if r["capture_ratio"] is None else round(r["capture_ratio"], 3)
        rows.append(row)
    return rows


def _markdown(rows: list[dict]) -> str:
    cols = list(rows[0])
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join("" if r[c] is None else str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(out)


def _profile(site, prices: list[str]) -> dict:
    data = load_data(site, prices, "aemo", "2024-01-09T13:00:00Z", "2024-01-11T13:00:00Z")
    cfg = BacktestConfig(strategies=("lp",), forecast="persistence", progress=False, workers=1)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    r = run_backtest(data, BatterySpec.from_site(site), cfg)
    prof.disable()
    wall = time.perf_counter() - t0
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf).sort_stats("tottime")
    top = []
    for (file, line, fn), (_, calls, tottime, cumtime, _) in sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:12]:
        top.append({"function": f"{Path(file).name}:{line}({fn})", "calls": calls, "tottime_s": round(tottime, 3),
                    "cumtime_s": round(cumtime, 3)})
    return {"window": "2 days, lp only", "replans": r.summary["replans"], "wall_s_under_profiler": round(wall, 2),
            "engine_split_s": r.summary["profile_s"], "top_by_own_time": top}


def main() -> dict:
    from benchmarks.common import machine, write_results

    site = load_sites(DEFAULT_SITES_FILE).get("demo")
    prices = _prices()
    out: dict = {"benchmark": "backtest", "generated_at": pd.Timestamp.now(tz="UTC").isoformat(), "machine": machine(),
                 "targets": TARGETS, "site": "demo (data/sites.yaml)", "prices": "AEMO VIC1 price-and-demand, ../shared/data/real"}

    def run(name: str, window: tuple[str, str], **cfg) -> object:
        t0 = time.perf_counter()
        config = BacktestConfig(progress=False, spike_threshold_per_mwh=site.provider.spike_threshold_per_mwh, **cfg)
        result = backtest_site(site, prices, config, price_format="aemo", start=window[0], end=window[1])
        wall = time.perf_counter() - t0
        out[name] = {"window": list(window), "wall_s_incl_loading": round(wall, 2), **_slim(result.summary)}
        print(f"{name}: {result.summary['intervals']} intervals, {result.summary['replans']} replans in "
              f"{result.summary['elapsed_s']:.1f} s ({result.summary['replans_per_s']:.0f}/s), "
              f"capture {result.summary['capture_ratio']}", flush=True)
        return result

    run("month_lp", MONTH, strategies=("lp",), forecast="persistence")
    run("month_perfect", MONTH, strategies=("lp",), forecast="perfect")
    year = run("year", YEAR, strategies=("lp", "self_consumption"), forecast="persistence")
    rows = _savings_table(year)
    out["year"]["savings_table"] = rows
    out["year"]["savings_table_md"] = _markdown(rows)
    previous = RESULTS / "backtest.json"
    if os.environ.get("BENCH_BACKTEST_GREEDY") == "1":
        both = run("year_with_greedy", YEAR, strategies=("lp", "greedy", "self_consumption"), forecast="persistence")
        rows = _savings_table(both)
        out["year_with_greedy"].update(savings_table=rows, savings_table_md=_markdown(rows),
                                       measured_at=out["generated_at"], load_average=out["machine"]["load_average"])
    elif previous.exists() and "year_with_greedy" in (old := json.loads(previous.read_text())):
        out["year_with_greedy"] = old["year_with_greedy"]
    out["profile"] = _profile(site, prices)
    y, m = out["year"], out["month_lp"]
    out["verdict"] = {
        "month_s": m["elapsed_s"], "month_ok": m["elapsed_s"] <= TARGETS["month_s"],
        "year_s": y["elapsed_s"], "year_ok": y["elapsed_s"] <= TARGETS["year_s"],
        "year_replans_per_s": y["replans_per_s"], "replans_ok": y["replans_per_s"] >= TARGETS["replans_per_s"],
    }
    path = write_results("backtest", out)
    print(out["year"]["savings_table_md"])
    print(f"verdict: {out['verdict']} -> {path}")
    return out


if __name__ == "__main__":
    main()
