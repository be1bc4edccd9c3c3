"""Price-forecast benchmark: captured savings of the learned model vs persistence and perfect foresight.

Setup (issue #10 targets): AEMO VIC1 months 2024-01, 2024-06, 2024-10 and 2025-06 from
``../shared/data/real/aemo/price_and_demand/VIC1``; the Ausgrid household (customer 12, load and 1 kWp
solar, mapped by calendar day and Sydney wall-clock half-hour); a 13.5 kWh / 5 kW battery (95 % each way,
10 % reserve); retail import = 1.1 x RRP/1000 + 0.12 $/kWh floored at 0, export = RRP/1000. The live
planner (warm tiered LP replanned every 5 minutes) runs once per (month, forecast model):

* ``perfect``: the real future (the ceiling a forecast can give the planner);
* ``persistence``: yesterday's prices at the same time;
* ``learned``: ``forecasts.price_model`` walk-forward: refitted at each local midnight on the 56 days before
  it only (the shipped files before the month are its stored history), the spike-reserve rule on.

Capture ratio = savings / perfect-foresight savings (the bound is one LP over the real month). Targets:
learned mean capture >= 0.70 over the four months and no month below 0.45; dollars pooled too.

Method selection (never on the evaluated months): ``--select`` replays five tuning windows
(2023-08-08.., 2024-07-26.., 2024-12-01.., 2025-02-01.., 2024-04-10.., 2024-05-10.., 2023-05-10..) for
the candidate variants and reports pooled dollars; the defaults in ``PriceModelConfig`` / ``price_mapping``
are the winners (mean-centred plan, spike reserve weight 1 at P90 >= 200 $/MWh, ungated).

Tried and not adopted: a gate (the rule fires only after a realised >= 500 $/MWh interval in the last 3
days or >= 1000 $/MWh in the last 14). Gate selection
(pooled over the seven windows, learned savings / capture mean): ungated $372.01 / 0.771; 300:3/7/14
days $371.9-372.2 / 0.770-0.774 (300 $/MWh happens nearly every week, so the gate stays open); 1000:7 or
1000:14 alone $360 / 0.73 (misses the first spikes of 2025-02: 0.65 -> 0.27); 500:1 or 500:3 alone
$265 / 0.73 (misses the first cap of 2024-07/08: 0.91 -> 0.53); 500:7 $373.60 / 0.783; 500:14 $372.86 /
0.778; 500:3 or 1000:14 $373.57 / 0.784 (the best: no window loses more than 0.003 against ungated, the
dear spike-free 2024-05 window gains 0.795 -> 0.879). Evaluated once on the benchmark months it met the
worst-month target (2024-06 0.447 -> 0.497) but lost pooled money ($351.22 -> $331.00; 2025-06 0.615 ->
0.559) and a hair of mean capture (0.658 -> 0.657), so the default stays ungated; the run is kept under
``gated_trial`` in the results. Picking another gate after seeing that would be tuning on evaluated months.

Stop 13, on fifteen tuning windows (the seven above plus eight more, none in an evaluated month; pooled
learned savings of $582.86 possible / mean capture / worst window): default $447.59 / 0.647 / 0.021
(2025-07: calm after the June 2025 spikes); persistence $237.31 / 0.523 / 0.240; no reserve rule $316.03 /
0.675 / 0.181; gate 500:3,1000:14 $459.60 / 0.689 / 0.083; spike_excess 150 $315.15 / 0.670; profile
clip 0.95 + half-life 7 + dev_clip 500 $445.17 / 0.632; ``reserve_slots`` 12 $325.04 / 0.654 (keeps
2024-07 at 0.665 but loses the cap-spike windows 0.91 -> 0.46). Found: after a spiky month the mean path
overstates a calm month by ~80 $/MWh at every hour (2025-07: forecast 115-340, realised 34-167) because a
few spike intervals dominate the regression's least squares; ``target_clip`` 300 cuts that bias to ~20
(tested on the real data). On the 15 windows target_clip 300 was the best variant ($452.69 / 0.662 / worst
0.129); evaluated ONCE on the benchmark months it lost (mean 0.652 vs 0.658, pooled $340.44 vs $351.22;
2025-06 0.615 -> 0.589: the clipped regression no longer carries a spike in progress into the next hours),
so the default stays unclipped.

Run: ``.venv/bin/python -m benchmarks.bench_price_forecast [--select]``; results in
``benchmarks/results/price_forecast.json`` with the machine description.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import pandas as pd

from benchmarks.common import machine, write_results
from powersync_pipelines.paths import DATA_DIR, shared_real_data

MONTHS = ("2024-01", "2024-06", "2024-10", "2025-06")
MODELS = ("perfect", "persistence", "learned")
TZ = "Australia/Sydney"
RETAIL = {"network_adder_per_kwh": 0.12 / 1.1, "gst": 0.10, "import_floor_per_kwh": 0.0, "export_factor": 1.0,
          "export_fee_per_kwh": 0.0}
TARGETS = {"learned_mean_capture": 0.70, "learned_min_month_capture": 0.45}
TUNING_WINDOWS = {"2023-08 spike": ("2023-08-08", "2023-08-18"), "2024-07/08 cap spikes": ("2024-07-26", "2024-08-07"),
                  "2024-12 calm": ("2024-12-01", "2024-12-11"), "2025-02 spike": ("2025-02-01", "2025-02-11"),
                  "2024-04 autumn": ("2024-04-10", "2024-04-20"), "2024-05 dear, no cap": ("2024-05-10", "2024-05-20"),
                  "2023-05 dear, no cap": ("2023-05-10", "2023-05-20"),
                  # Added in stop 13: calm winters after spiky months reproduce the 2024-06 / 2025-06 loss.
                  "2023-06 winter": ("2023-06-01", "2023-06-15"), "2023-07 winter": ("2023-07-10", "2023-07-24"),
                  "2025-07 winter": ("2025-07-01", "2025-07-15"), "2024-07 winter": ("2024-07-01", "2024-07-15"),
                  "2023-01 summer": ("2023-01-10", "2023-01-24"), "2025-01 summer": ("2025-01-10", "2025-01-24"),
                  "2023-10 spring": ("2023-10-01", "2023-10-15"), "2025-10 spring": ("2025-10-01", "2025-10-15")}
UNGATED = {"reserve_gate": ""}
VARIANTS = {
    "mean, no reserve": {"reserve_weight": 0.0},
    "p50, no reserve": {"reserve_weight": 0.0, "planning": "p50"},
    "mean, reserve 0.5 @300": {"reserve_weight": 0.5, "spike_threshold": 300, **UNGATED},
    "mean, reserve 1.0 @300": {"reserve_weight": 1.0, "spike_threshold": 300, **UNGATED},
    "mean, reserve 0.5 @200": {"reserve_weight": 0.5, "spike_threshold": 200, **UNGATED},
    "mean, reserve 1.0 @200 (default)": {"reserve_weight": 1.0, "spike_threshold": 200, **UNGATED},
    "mean, reserve 1.0 @150": {"reserve_weight": 1.0, "spike_threshold": 150, **UNGATED},
    "mean, reserve 1.0 @200, excess 150": {"reserve_weight": 1.0, "spike_threshold": 200, "spike_excess": 150,
                                           **UNGATED},
    "reserve @200, gate 500:7": {"reserve_gate": "500:7"},
    "reserve @200, gate 1000:14": {"reserve_gate": "1000:14"},
    "reserve @200, gate 500:3,1000:14": {"reserve_gate": "500:3,1000:14"},
}


def _folder() -> str:
    root = shared_real_data()
    folder = root / "aemo" / "price_and_demand" / "VIC1" if root else None
    if folder is None or not folder.exists():
        raise SystemExit("bench_price_forecast needs ../shared/data/real/aemo/price_and_demand/VIC1")
    return str(folder)


def _site():
    from powersync_pipelines.config import parse_sites

    return parse_sites({"sites": [{
        "id": "bench", "timezone": TZ,
        "provider": {"kind": "aemo", "region": "VIC1", "retail": RETAIL},
        "battery": {"kind": "simulated", "capacity_kwh": 13.5, "max_charge_kw": 5.0, "max_discharge_kw": 5.0,
                    "charge_efficiency": 0.95, "discharge_efficiency": 0.95, "backup_reserve_pct": 10,
                    "optimizer_reserve_pct": 10},
        "load": {"profile": str(DATA_DIR / "profiles" / "ausgrid_customer12.csv")},
        "limits": {"export_kw": 5.0, "import_kw": 15.0},
    }]}).get("bench")


def run_one(label: str, start: str, end: str, model: str, params: dict) -> dict:
    """One backtest (a worker-process entry point)."""
    from powersync_pipelines.backtest import BacktestConfig, ForecastOptions, backtest_site

    folder = _folder()
    p = {"history": folder, "region": "VIC1", "retail": tuple(RETAIL.values()), **params}
    cfg = BacktestConfig(strategies=("lp",), forecast=model, workers=1, progress=False,
                         forecast_options=ForecastOptions(params=tuple(sorted(p.items()))))
    t0 = time.perf_counter()
    s = backtest_site(_site(), [folder], cfg, start=pd.Timestamp(start, tz=TZ).isoformat(),
                      end=pd.Timestamp(end, tz=TZ).isoformat()).summary
    return {"label": label, "model": model, "params": params, "capture_ratio": s["capture_ratio"],
            "savings": round(s["savings"], 2), "baseline_cost": round(s["baseline_cost"], 2),
            "cost": round(s["cost"], 2), "perfect_foresight_cost": round(s["perfect_foresight_cost"], 2),
            "perfect_foresight_savings": round(s["baseline_cost"] - s["perfect_foresight_cost"], 2),
            "replans": s["replans"], "elapsed_s": round(time.perf_counter() - t0, 1)}


def _run_all(tasks: list[tuple]) -> list[dict]:
    with ProcessPoolExecutor(max_workers=2, mp_context=mp.get_context("spawn")) as pool:
        return list(pool.map(run_one, *zip(*tasks, strict=True)))


def _month_bounds(month: str) -> tuple[str, str]:
    start = pd.Timestamp(month + "-01")
    return str(start.date()), str((start + pd.offsets.MonthBegin(1)).date())


def _pooled(rows: list[dict]) -> dict:
    out = {}
    for m in sorted({r["model"] for r in rows}):
        rs = [r for r in rows if r["model"] == m]
        sav, pf = sum(r["savings"] for r in rs), sum(r["perfect_foresight_savings"] for r in rs)
        caps = [r["capture_ratio"] for r in rs if r["capture_ratio"] is not None]
        out[m] = {"savings": round(sav, 2), "perfect_foresight_savings": round(pf, 2),
                  "pooled_capture": round(sav / pf, 4) if pf > 0 else None,
                  "mean_capture": round(sum(caps) / len(caps), 4) if caps else None,
                  "min_capture": round(min(caps), 4) if caps else None}
    return out


def _table(rows: list[dict], labels: list[str], models: list[str]) -> str:
    head = "| window | " + " | ".join(models) + " | perfect-foresight savings $ |"
    lines = [head, "|" + "---|" * (len(models) + 2)]
    for lab in labels:
        cells = []
        pf = None
        for m in models:
            r = next(x for x in rows if x["label"] == lab and x["model"] == m)
            cells.append(f"{r['capture_ratio']:.3f} (${r['savings']:.2f})")
            pf = r["perfect_foresight_savings"]
        lines.append(f"| {lab} | " + " | ".join(cells) + f" | {pf:.2f} |")
    return "\n".join(lines)


def evaluate() -> dict:
    tasks = [(m, *_month_bounds(m), model, {}) for m in MONTHS for model in MODELS]
    t0 = time.perf_counter()
    rows = _run_all(tasks)
    pooled = _pooled(rows)
    learned = pooled["learned"]
    table = _table(rows, list(MONTHS), list(MODELS))
    print(table)
    print({m: (v["mean_capture"], v["pooled_capture"], v["savings"]) for m, v in pooled.items()})
    return {
        "rows": rows, "pooled": pooled, "table_markdown": table, "elapsed_s": round(time.perf_counter() - t0, 1),
        "targets": TARGETS,
        "targets_met": {"learned_mean_capture": (learned["mean_capture"] or 0) >= TARGETS["learned_mean_capture"],
                        "learned_min_month_capture": (learned["min_capture"] or 0) >= TARGETS["learned_min_month_capture"]},
    }


def select() -> dict:
    labels = list(TUNING_WINDOWS)
    tasks = [(lab, *TUNING_WINDOWS[lab], "persistence", {}) for lab in labels]
    for params in VARIANTS.values():
        tasks += [(lab, *TUNING_WINDOWS[lab], "learned", params) for lab in labels]
    rows = _run_all(tasks)
    for r in rows:
        if r["model"] == "learned":
            r["model"] = next(n for n, p in VARIANTS.items() if p == r["params"])
    table = _table(rows, labels, ["persistence", *VARIANTS])
    print(table)
    return {"rows": rows, "pooled": _pooled(rows), "table_markdown": table}


def main() -> None:
    payload: dict = {"machine": machine(), "setup": {
        "months": MONTHS, "timezone": TZ, "retail": "import = 1.1 x RRP/1000 + 0.12 floored at 0; export = RRP/1000",
        "battery": "13.5 kWh / 5 kW, 95% each way, 10% reserve", "load_solar": "Ausgrid customer 12 profile",
        "planner": "lp, tiered horizon, warm Replanner, 5-minute replans"}}
    if "--select" in sys.argv:
        payload["selection"] = select()
    payload["evaluation"] = evaluate()
    payload["machine_after"] = {"load_average": machine()["load_average"]}
    path = write_results("price_forecast", payload)
    print(f"-> {path}")


if __name__ == "__main__":
    main()
