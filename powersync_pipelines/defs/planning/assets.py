"""The planning loop as assets, partitioned by site; one run may cover every site.

price_forecast -> solar_forecast, load_forecast -> battery_schedule -> tou_tariff_payload, battery_commands
-> telemetry. DuckDB is the store between stages (a run can span several site partitions, which the default
IO manager cannot persist), so assets return ``MaterializeResult`` with metadata for the UI.
"""


from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
from pandera import errors as pa_errors

from ... import pipeline
from ...live.store import spike_in_control
from ...reporting import action_blocks, plan_plot_png, png_markdown
from ...schemas import PriceFrame
from ..resources import BatteryFleetResource, ClockResource, HistoryStoreResource, SitesResource
from .partitions import site_partitions

GROUP = "planning"
COMMON: dict[str, Any] = {
    "partitions_def": site_partitions,
    "group_name": GROUP,
    "backfill_policy": dg.BackfillPolicy.single_run(),
}


def _table_md(df: pd.DataFrame) -> dg.MetadataValue:
    return dg.MetadataValue.md(df.to_markdown(index=False) if not df.empty else "_empty_")


def _per_site(context: dg.AssetExecutionContext) -> list[str]:
    return list(context.partition_keys)


def _sites_now(context: dg.AssetExecutionContext, sites: SitesResource, clock: ClockResource):
    """(site id, site, planning instant) for every site partition of this run."""
    for site_id in _per_site(context):
        site = sites.site(site_id)
        yield site_id, site, clock.now(context, site)


@dg.asset(kinds={"python", "duckdb"}, description="Normalised import/export prices over the 48 h horizon "
          "(provider data stored in DuckDB `prices`; horizon padded and flagged where the provider is short).",
          pool="duckdb_history", check_specs=[dg.AssetCheckSpec("price_frame_valid", asset="price_forecast",
          description="pandera PriceFrame schema on the stored window and <= 10% of the first 24 h filled")],
          **COMMON)
def price_forecast(context: dg.AssetExecutionContext, sites: SitesResource, history: HistoryStoreResource,
                   clock: ClockResource) -> dg.MaterializeResult:
    store = history.store()
    meta: dict[str, Any] = {}
    problems: list[str] = []
    for site_id, site, now in _sites_now(context, sites, clock):
        pf = pipeline.price_forecast(site, now, store)
        f = pf.frame
        try:
            PriceFrame.validate(store.read_prices(site.id, now - pd.Timedelta(hours=1), f.index[-1]), lazy=True)
        except pa_errors.SchemaErrors as exc:
            problems.append(f"{site_id}: stored prices fail the schema: {len(exc.failure_cases)} failure(s)")
        if pf.source != "live":
            problems.append(f"{site_id}: {pf.message}")
            context.log.warning(f"{site_id}: {pf.message}")
        meta[f"{site_id}/source"] = dg.MetadataValue.text(pf.message or pf.source)
        filled_24h = float(f["filled"].iloc[:288].mean())
        if filled_24h > 0.10:
            problems.append(f"{site_id}: {filled_24h:.0%} of the first 24 h is filled, not provider data")
        context.log.info(f"{site_id}: prices {now.isoformat()} coverage {pf.coverage:.0%}, filled {pf.filled}")
        meta[f"{site_id}/now"] = dg.MetadataValue.text(now.isoformat())
        meta[f"{site_id}/coverage"] = float(pf.coverage)
        meta[f"{site_id}/filled_fraction_24h"] = filled_24h
        meta[f"{site_id}/provenance"] = dg.MetadataValue.json(
            {str(k): int(v) for k, v in f["provenance"].value_counts().items()})
        meta[f"{site_id}/import_max"] = float(f["import_price"].max())
        meta[f"{site_id}/export_min"] = float(f["export_price"].min())
        meta[f"{site_id}/spike_intervals"] = int((f["spike_status"] != "none").sum())
    check = dg.AssetCheckResult(check_name="price_frame_valid", passed=not problems,
                                metadata={"problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none")})
    return dg.MaterializeResult(metadata=meta, check_results=[check])


@dg.asset(kinds={"python", "pvlib"}, description="Solar kW on the 5-min grid, 48 h ahead (Solcast P50 with "
          "P10/P90 where the site has a rooftop resource, else pvlib clear-sky x climatology; scaled by the last "
          "half hour's measured production where telemetry has it).", pool="duckdb_history", **COMMON)
def solar_forecast(context: dg.AssetExecutionContext, sites: SitesResource, history: HistoryStoreResource,
                   clock: ClockResource) -> dg.MaterializeResult:
    store = history.store()
    meta: dict[str, Any] = {}
    for site_id, site, now in _sites_now(context, sites, clock):
        solar = pipeline.solar_forecast(site, now, store)
        meta[f"{site_id}/energy_kwh_48h"] = float(solar.sum() / 12)
        meta[f"{site_id}/peak_kw"] = float(solar.max())
        meta[f"{site_id}/provenance"] = dg.MetadataValue.json(solar.attrs.get("provenance", {}))
    return dg.MaterializeResult(metadata=meta)


@dg.asset(kinds={"python"}, description="Household load kW, 48 h ahead (measured history profile when "
          "there is a week of telemetry, else a real household profile; plus the last half hour's measured "
          "difference, fading over half an hour).", pool="duckdb_history", **COMMON)
def load_forecast(context: dg.AssetExecutionContext, sites: SitesResource, history: HistoryStoreResource,
                  clock: ClockResource) -> dg.MaterializeResult:
    store = history.store()
    meta: dict[str, Any] = {}
    for site_id, site, now in _sites_now(context, sites, clock):
        load, model = pipeline.load_forecast(site, now, store)
        meta[f"{site_id}/model"] = dg.MetadataValue.text(model)
        meta[f"{site_id}/energy_kwh_48h"] = float(load.sum() / 12)
    return dg.MaterializeResult(metadata=meta)


def _stored_series(store, site_id: str, kind: str, idx: pd.DatetimeIndex) -> pd.Series:
    df = store.query(
        "SELECT interval_start, value FROM forecasts WHERE site_id = ? AND kind = ? AND interval_start >= ? "
        "AND interval_start <= ? ORDER BY interval_start",
        [site_id, kind, idx[0].to_pydatetime(), idx[-1].to_pydatetime()],
    )
    s = pd.Series(df["value"].to_numpy(), index=pd.to_datetime(df["interval_start"], utc=True))
    if len(s.reindex(idx).dropna()) < len(idx):
        raise LookupError(f"site {site_id!r}: {kind} forecast missing for {idx[0].isoformat()}; "
                          f"materialise {kind}_forecast first")
    return s.reindex(idx)


def _current_soc(site, fleet: BatteryFleetResource, store, context) -> tuple[float, str]:
    """SOC from the device now; else the last stored telemetry; else the configured initial SOC."""
    try:
        with fleet.open(site, store) as device:
            t = device.read_telemetry()
        store.upsert_telemetry(site.id, t.ts, t.as_row())
        return float(t.soc), "device"
    except Exception as exc:  # the plan is still useful (and stored) even when the device is unreachable
        context.log.warning(f"{site.id}: could not read the battery ({exc}); planning from stored SOC")
    last = store.query("SELECT soc FROM telemetry WHERE site_id = ? ORDER BY ts DESC LIMIT 1", [site.id])
    if not last.empty and last["soc"].notna().iloc[0]:
        return float(last["soc"].iloc[0]), "stored_telemetry"
    return site.battery.initial_soc_pct / 100.0, "configured_initial"


@dg.asset(kinds={"python", "highspy"}, deps=[price_forecast, solar_forecast, load_forecast],
          description="48 h charge/discharge plan (highspy LP) with actions per 5-min slot and savings vs "
          "a no-battery baseline; stored in DuckDB `plans` + `schedule`.", pool="duckdb_history",
          check_specs=[dg.AssetCheckSpec("plan_feasible", asset="battery_schedule", description="energy "
          "balance per interval, SOC within reserve..100%, power and grid limits, no charge+discharge at once")],
          **COMMON)
def battery_schedule(context: dg.AssetExecutionContext, sites: SitesResource, history: HistoryStoreResource,
                     clock: ClockResource, fleet: BatteryFleetResource) -> dg.MaterializeResult:
    store = history.store()
    meta: dict[str, Any] = {}
    violations: list[str] = []
    for site_id, site, now in _sites_now(context, sites, clock):
        pf = pipeline.stored_price_forecast(site, now, store)
        idx = pf.frame.index
        solar = _stored_series(store, site.id, "solar", idx)
        load = _stored_series(store, site.id, "load", idx)
        soc, soc_source = _current_soc(site, fleet, store, context)
        plan = pipeline.plan_schedule(site, now, pf.frame, solar, load, soc, store,
                                      stale_prices=pf.message if pf.stale else None)
        r = plan.result
        violations += [f"{site_id}: {v}" for v in pipeline.plan_violations(r.intervals, site, soc)]
        blocks = action_blocks(r.intervals, site.timezone)
        context.log.info(f"{site_id}: plan {plan.plan_id} {r.status} via {r.solver}, cost {r.cost:.2f} vs "
                         f"baseline {r.baseline_cost:.2f} ({r.solve_ms:.0f} ms)")
        meta.update({
            f"{site_id}/plan_id": dg.MetadataValue.text(plan.plan_id),
            f"{site_id}/status": dg.MetadataValue.text(f"{r.status} ({r.solver})"
                                                       + (f": {r.fallback_reason}" if r.fallback_reason else "")),
            f"{site_id}/soc_initial_pct": round(soc * 100, 1),
            f"{site_id}/soc_source": dg.MetadataValue.text(soc_source),
            f"{site_id}/cost": float(r.cost),
            f"{site_id}/baseline_cost": float(r.baseline_cost),
            f"{site_id}/self_consumption_cost": float(r.self_consumption_cost),
            f"{site_id}/savings_24h": float(r.savings_24h),
            f"{site_id}/solve_ms": float(r.solve_ms),
            f"{site_id}/next_actions": _table_md(blocks),
            f"{site_id}/plot": dg.MetadataValue.md(png_markdown(
                plan_plot_png(r.intervals, site.timezone, f"{site_id} plan from {now.isoformat()}"))),
        })
    check = dg.AssetCheckResult(check_name="plan_feasible", passed=not violations,
                                metadata={"violations": dg.MetadataValue.md("\n".join(f"- {v}" for v in violations) or "none")})
    return dg.MaterializeResult(metadata=meta, check_results=[check])


@dg.asset(kinds={"python", "tesla"}, deps=[battery_schedule], description="The TOU tariff (48 half-hours, local "
          "time) that makes a tariff-driven battery follow the plan: uploaded to Tesla/Sigenergy batteries only when "
          "it changed materially, stored (with the reply and a diff) in DuckDB `tariff_payloads` for every site.",
          pool="duckdb_history", **COMMON)
def tou_tariff_payload(context: dg.AssetExecutionContext, sites: SitesResource, history: HistoryStoreResource,
                       clock: ClockResource) -> dg.MaterializeResult:
    from ...tariffs.services import sync_tou_schedule

    store = history.store()
    meta: dict[str, Any] = {}
    for site_id, site, now in _sites_now(context, sites, clock):
        pf = pipeline.stored_price_forecast(site, now, store)
        out = sync_tou_schedule(site, store, now, prices=pf.frame)
        context.log.info(f"{site_id}: tariff {out.get('format')} {out.get('action')}: {out.get('reason')}")
        meta[f"{site_id}/decision"] = dg.MetadataValue.text(f"{out.get('action')}: {out.get('reason')}"
                                                            + (f" ({out['note']})" if out.get("note") else ""))
        meta[f"{site_id}/hash"] = dg.MetadataValue.text(str(out.get("payload_hash")))
        meta[f"{site_id}/sent"] = dg.MetadataValue.bool(bool(out.get("sent")))
        meta[f"{site_id}/changed_half_hours"] = int(out.get("changed_periods") or 0)
        meta[f"{site_id}/max_change_per_kwh"] = float(out.get("max_change") or 0.0)
    return dg.MaterializeResult(metadata=meta)


@dg.asset(kinds={"python", "modbus"}, deps=[battery_schedule], description="The current plan slot pushed to "
          "the battery (verified by read-back); every command in DuckDB `commands`.", pool="modbus", **COMMON)
def battery_commands(context: dg.AssetExecutionContext, sites: SitesResource, history: HistoryStoreResource,
                     clock: ClockResource, fleet: BatteryFleetResource) -> dg.MaterializeResult:
    store = history.store()
    meta: dict[str, Any] = {}
    failures = []
    for site_id, site, now in _sites_now(context, sites, clock):
        if spike_in_control(store, site.id):  # the spike watch outranks the optimizer (live/spike.py priority)
            meta[f"{site_id}/action"] = dg.MetadataValue.text("skipped: the AEMO spike watch holds the battery")
            continue
        latest = store.read_latest_plan(site.id)
        if latest is None:
            raise dg.Failure(f"site {site_id!r}: no plan stored; materialise battery_schedule first")
        plan_meta, intervals = latest
        slot = intervals.loc[intervals.index <= now]
        row = slot.iloc[-1] if not slot.empty else intervals.iloc[0]
        power = float(max(row["battery_charge_kw"], row["battery_discharge_kw"]))
        until = row.name + pd.Timedelta(minutes=5)
        try:
            with fleet.open(site, store) as device:
                result = pipeline.push_action(device, site, store, str(row["action"]), power, until, row.name)
        except Exception as exc:  # unreachable device: nothing was written; record why
            result = pipeline.record_unreachable(site, store, str(row["action"]), power, row.name, exc)
        meta[f"{site_id}/action"] = dg.MetadataValue.text(f"{row['action']} {power:.2f} kW until {until.isoformat()}")
        meta[f"{site_id}/written"] = dg.MetadataValue.json(result.get("written") or {})
        meta[f"{site_id}/outcome"] = dg.MetadataValue.text(result["outcome"] + (f": {result['error']}" if result.get("error") else ""))
        if result["outcome"] != "ok":
            failures.append(f"{site_id}: {result['outcome']}: {result.get('error')}")
    if failures:
        context.log.error("; ".join(failures))
        raise dg.Failure("battery command failed: " + "; ".join(failures), metadata=meta)
    return dg.MaterializeResult(metadata=meta)


@dg.asset(kinds={"python", "modbus"}, deps=[battery_commands], description="The battery read back after the "
          "command (SOC, powers with named directions); history in DuckDB `telemetry`.", pool="modbus", **COMMON)
def telemetry(context: dg.AssetExecutionContext, sites: SitesResource, history: HistoryStoreResource,
              fleet: BatteryFleetResource) -> dg.MaterializeResult:
    store = history.store()
    meta: dict[str, Any] = {}
    for site_id in _per_site(context):
        site = sites.site(site_id)
        with fleet.open(site, store) as device:
            t = device.read_telemetry()
        store.upsert_telemetry(site.id, t.ts, t.as_row())
        meta[f"{site_id}/soc_pct"] = round(float(t.soc) * 100, 2)
        meta[f"{site_id}/mode"] = dg.MetadataValue.text(str(t.mode))
        meta[f"{site_id}/battery_kw"] = float(np.round(t.battery_charge_kw - t.battery_discharge_kw, 3))
    return dg.MaterializeResult(metadata=meta)


PLANNING_ASSETS = [price_forecast, solar_forecast, load_forecast, battery_schedule, tou_tariff_payload,
                   battery_commands, telemetry]
