"""Files a backtest leaves behind: summary.json, intervals.parquet, a PNG plot and a Markdown report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from .engine import BacktestResult

PLOT_NAME = "backtest.png"
REPORT_NAME = "report.md"


def write_outputs(result: BacktestResult, out: Path, title: str = "Backtest") -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "summary": out / "summary.json",
        "intervals": out / "intervals.parquet",
        "plot": out / PLOT_NAME,
        "report": out / REPORT_NAME,
    }
    paths["summary"].write_text(json.dumps(result.summary, indent=2, default=str) + "\n")
    result.intervals.to_parquet(paths["intervals"], index=False)
    plot(result, paths["plot"], title)
    paths["report"].write_text(markdown_report(result, title))
    return paths


def _wide(result: BacktestResult, column: str) -> pd.DataFrame:
    return result.intervals.pivot(index="interval_start", columns="strategy", values=column)


def plot(result: BacktestResult, path: Path | BinaryIO, title: str) -> None:
    """Price, SOC, battery power and cumulative savings per strategy, on one time axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result.summary
    chosen = s["strategy"]
    first = result.intervals[result.intervals["strategy"] == "none"].set_index("interval_start")
    long_window = len(first) > 4_000  # beyond two weeks: 30-min means (drawing stays fast, the plot readable)
    rule = "30min" if long_window else None

    def rs(x: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
        return x.resample(rule).mean() if rule else x

    tz = s.get("site_timezone", "UTC")
    fig, ax = plt.subplots(4, 1, figsize=(12, 10), sharex=True, constrained_layout=True)
    prices = rs(first[["import_price", "export_price"]]).tz_convert(tz)
    ax[0].plot(prices.index, prices["import_price"], lw=0.7, label="import")
    ax[0].plot(prices.index, prices["export_price"], lw=0.7, label="export")
    ax[0].set_yscale("symlog", linthresh=0.5)
    ax[0].set_ylabel("$/kWh")
    ax[0].legend(loc="upper right", fontsize=8)
    ax[0].set_title(
        f"{title}: {chosen} ({s['forecast_model']} forecast) saves \\${s['savings']:.2f} of "
        f"${s['baseline_cost'] - s['perfect_foresight_cost']:.2f} possible"
        + (f" (capture {s['capture_ratio']:.2f})" if s["capture_ratio"] is not None else "")
    )
    soc = rs(_wide(result, "soc")).tz_convert(tz)
    for strat in (chosen, "perfect_foresight"):
        ax[1].plot(soc.index, soc[strat] * 100, lw=0.8, label=strat)
    ax[1].set_ylabel("SOC %")
    ax[1].set_ylim(0, 100)
    ax[1].legend(loc="upper right", fontsize=8)
    chosen_rows = result.intervals[result.intervals["strategy"] == chosen].set_index("interval_start")
    power = rs(pd.DataFrame({
        "battery (+ charge, - discharge)": chosen_rows["battery_charge_kw"] - chosen_rows["battery_discharge_kw"],
        "load": chosen_rows["load_kw"], "solar": chosen_rows["solar_kw"],
    })).tz_convert(tz)
    for c in power.columns:
        ax[2].plot(power.index, power[c], lw=0.7, label=c)
    ax[2].set_ylabel("kW")
    ax[2].legend(loc="upper right", fontsize=8)
    sav = _wide(result, "savings").cumsum()
    sav = (sav.resample(rule).last() if rule else sav).tz_convert(tz)
    for strat in sav.columns:
        if strat != "none":
            ax[3].plot(sav.index, sav[strat], lw=1.0, label=strat)
    ax[3].set_ylabel("cumulative savings $")
    ax[3].legend(loc="upper left", fontsize=8)
    ax[3].set_xlabel(f"local time ({tz})")
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def _fmt(v: object, nd: int = 2) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "—"
    return f"{v:.{nd}f}" if isinstance(v, float | int) and not isinstance(v, bool) else str(v)


def markdown_report(result: BacktestResult, title: str) -> str:
    s = result.summary
    lines = [
        f"# {title}",
        "",
        f"Window {s['start']} to {s['end']} ({s['intervals']} five-minute intervals, site time zone "
        f"{s['site_timezone']}). Forecast model **{s['forecast_model']}**, horizon {s['horizon']}, reported "
        f"strategy **{s['strategy']}**.",
        "",
        f"* Without a battery: **${s['baseline_cost']:.2f}**; with `{s['strategy']}`: **${s['cost']:.2f}**; "
        f"savings **${s['savings']:.2f}**.",
        f"* Perfect foresight (the bound): ${s['perfect_foresight_cost']:.2f}; capture ratio "
        f"**{_fmt(s['capture_ratio'], 3)}**.",
        f"* {s['replans']} replans in {s['elapsed_s']:.1f} s ({_fmt(s['replans_per_s'], 0)} replans/s, "
        f"{s['workers']} process(es), {s['chunks']} chunk(s)).",
        "",
        "## Strategies",
        "",
        "| strategy | cost $ | savings $ | capture | wear $ | import kWh | export kWh | discharged kWh |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, v in s["strategies"].items():
        lines.append(
            f"| {name} | {v['cost']:.2f} | {v['savings']:.2f} | {_fmt(v['capture_ratio'], 3)} | {v['wear_cost']:.2f} "
            f"| {v['import_kwh']:.1f} | {v['export_kwh']:.1f} | {v['discharge_kwh']:.1f} |"
        )
    monthly = pd.DataFrame(s["monthly"])
    if not monthly.empty:
        sav_cols = [c for c in monthly.columns if c.startswith("savings_")]
        lines += ["", "## Savings by month ($, vs no battery)", "",
                  "| month | " + " | ".join(c.removeprefix("savings_") for c in sav_cols) + " | capture |",
                  "|---|" + "---:|" * (len(sav_cols) + 1)]
        for _, row in monthly.iterrows():
            lines.append(f"| {row['month']} | " + " | ".join(_fmt(row[c]) for c in sav_cols)
                         + f" | {_fmt(row['capture_ratio'], 3)} |")
    lines += [
        "", "## Reading it", "",
        "* `cost` is the energy bill (imports paid minus exports earned) with the real prices, load and solar; "
        "wear is reported separately.",
        "* The live strategies replan every 5 minutes on the forecast the system would have had and act on the "
        "first interval only; `SELF_CONSUMPTION` follows the real house, not the plan's kW.",
        "* The capture ratio stays below 1 even with perfect forecasts: the live plan sees 48 h (tiered: "
        "5 min, then 30 min, then 60 min) and values leftover energy at a terminal price, while the bound sees the "
        "whole window at 5-minute resolution; SELF_CONSUMPTION intervals follow the house exactly rather than "
        "the plan's partial flows.",
        f"* Profile (s): {', '.join(f'{k} {v:.1f}' for k, v in s['profile_s'].items())}.",
    ]
    if s.get("notes"):
        lines += ["", "## Notes", "", *[f"* {n}" for n in s["notes"]]]
    lines += ["", f"![plot]({PLOT_NAME})", ""]
    return "\n".join(lines)
