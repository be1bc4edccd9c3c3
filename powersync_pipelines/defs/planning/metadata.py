"""What the planning assets show in the Dagster UI at first sight: the next actions as a real table (schema with
units), rounded metrics with their unit in the name, and the plan plot (local time, + = charging)."""

from __future__ import annotations

import threading
from typing import Any

import dagster as dg
import pandas as pd

from ...config import SiteConfig
from ...optimizer.result import ScheduleResult
from ...reporting import action_blocks, plan_plot_png, png_markdown

ACTION_COLUMNS = [
    dg.TableColumn("when", "string", "local time: day, start and end (hh:mm)"),
    dg.TableColumn("action", "string", "CHARGE (from the grid), EXPORT, SELF_CONSUMPTION or IDLE"),
    dg.TableColumn("battery_kw", "float", "mean battery power, kW: + charging, - discharging"),
    dg.TableColumn("soc_end_pct", "float", "state of charge at the end of the block, %"),
    dg.TableColumn("import_per_kwh", "float", "mean import price, currency/kWh"),
    dg.TableColumn("export_per_kwh", "float", "mean export price, currency/kWh"),
]

_PLOT_LOCK = threading.Lock()


def next_actions_table(intervals: pd.DataFrame, tz: str, limit: int = 12) -> dg.TableMetadataValue:
    """The plan's next blocks of equal action as a table metadata value (rendered as a table in the UI)."""
    blocks = action_blocks(intervals, tz, limit=limit)
    records = [dg.TableRecord({
        "when": f"{b['from']}-{b['to']}", "action": str(b["action"]),
        "battery_kw": float(b["battery_kw"]), "soc_end_pct": float(b["soc_end_pct"]),
        "import_per_kwh": round(float(b["import_price"]), 3),
        "export_per_kwh": round(float(b["export_price"]), 3),
    }) for _, b in blocks.iterrows()]
    return dg.MetadataValue.table(records, schema=dg.TableSchema(columns=ACTION_COLUMNS))


def schedule_metadata(site_id: str, site: SiteConfig, now: pd.Timestamp, plan_id: str, r: ScheduleResult,
                      soc: float, soc_source: str, detailed: bool = True) -> dict[str, Any]:
    """``battery_schedule``'s metadata for one site: money in the site's currency (named in the key), kW, %;
    ``detailed`` adds the next-actions table and the plan plot (the costly part)."""
    cur = site.currency or "AUD"
    sym = "£" if cur == "GBP" else "$"
    local = now.tz_convert(site.timezone)
    title = f"{site_id} plan from {local:%a %d %b %H:%M} ({site.timezone}); battery + = charging"
    meta: dict[str, Any] = {
        f"{site_id}/plan_id": dg.MetadataValue.text(plan_id),
        f"{site_id}/plan_start_local": dg.MetadataValue.text(f"{local:%Y-%m-%d %H:%M} {site.timezone}"),
        f"{site_id}/status": dg.MetadataValue.text(f"{r.status} ({r.solver})"
                                                   + (f": {r.fallback_reason}" if r.fallback_reason else "")),
        f"{site_id}/soc_initial_pct": round(soc * 100, 1),
        f"{site_id}/soc_source": dg.MetadataValue.text(soc_source),
        f"{site_id}/predicted_cost_48h_{cur}": round(float(r.cost), 2),
        f"{site_id}/no_battery_cost_48h_{cur}": round(float(r.baseline_cost), 2),
        f"{site_id}/self_consumption_cost_48h_{cur}": round(float(r.self_consumption_cost), 2),
        f"{site_id}/savings_48h_{cur}": round(float(r.baseline_cost - r.cost), 2),
        f"{site_id}/savings_24h_{cur}": round(float(r.savings_24h), 2),
        f"{site_id}/solve_ms": round(float(r.solve_ms), 1),
    }
    if "demand_cost_avoided" in r.extras:
        meta[f"{site_id}/demand_peak_kw"] = round(float(r.extras["demand_peak_kw"]), 2)
        meta[f"{site_id}/demand_charge_avoided_{cur}"] = round(float(r.extras["demand_cost_avoided"]), 2)
    if detailed:
        meta[f"{site_id}/next_actions"] = next_actions_table(r.intervals, site.timezone)
        with _PLOT_LOCK:  # matplotlib's state is not thread-safe and sites are planned on worker threads
            png = plan_plot_png(r.intervals, site.timezone, title, sym)
        meta[f"{site_id}/plot"] = dg.MetadataValue.md(png_markdown(png))
    return meta
