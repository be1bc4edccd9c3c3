"""The planning loop as assets, partitioned by site up to ``POWERSYNC_SITE_PARTITIONS_MAX`` sites (else one
unpartitioned run plans the fleet, or with ``POWERSYNC_SHARDS`` one run per shard: ``partitions.py`` says why);
one run covers every site of its partitions.

price_forecast -> solar_forecast, load_forecast -> battery_schedule -> tou_tariff_payload, battery_commands
-> telemetry, ev_charging (sites with an ``ev:`` section). DuckDB is the store between stages (a run can span several site partitions, which the default
IO manager cannot persist), so assets return ``MaterializeResult`` with metadata for the UI.

One site's failure never stops the others: each stage runs its sites through ``control.fleet.run_sites`` (in
order, or on bounded worker threads with a deadline per site where the stage talks to batteries), records a
site's error in the metadata (and fails the stage's asset check for it), and the later stages skip that site for
this slot. A stage acts only on what the same run produced for the same slot (``plan_id_for``), never on an
older plan. Each stage works on one held DuckDB connection (``storage.batch.StageStore``; the tables it only
writes are batched to its end) and reports its per-site p50/p95/amortised milliseconds.
"""

from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
from pandera import errors as pa_errors

from ...config import SiteConfig
from ...control import cycle
from ...control import fleet as fleet_run
from ...control.ev import ev_step
from ...control.switches import in_effect_many
from ...control.tariff_sync import sync_tou_schedule
from ...optimizer.feasibility import plan_violations
from ...prices.archive import ARCHIVE_TABLE
from ...schemas import PriceFrame
from ...storage import HistoryStore
from ...storage.batch import StageStore
from ...timegrid import HORIZON_HOURS
from ..resources import (
    BatteryFleetResource,
    ClockResource,
    HistoryStoreResource,
    SitesResource,
    control_context,
)
from .metadata import schedule_metadata
from .partitions import planning_partitions, run_site_ids, sharded, site_partitions

GROUP = "planning"
COMMON: dict[str, Any] = {
    "partitions_def": planning_partitions,
    "group_name": GROUP,
    **({"backfill_policy": dg.BackfillPolicy.single_run()} if planning_partitions is not None else {}),
}


DETAIL_SITES_MAX = 20
"""Up to this many sites a run's metadata has each site's details (and its plan plot). Dagster copies an asset's
metadata onto every partition's materialization, so per-site detail costs sites x sites: a larger run reports
the stage across the fleet (counts, per-site p50/p95 ms, the failed sites) and the details stay in DuckDB."""


def _site_ids(context: dg.AssetExecutionContext, sites: SitesResource) -> list[str]:
    """The sites of this run: its site partitions, the sites of its shards, or every site when the assets are
    not partitioned."""
    if context.has_partition_key or context.has_partition_key_range:
        return run_site_ids(list(context.partition_keys), [s.id for s in sites.load().sites] if sharded else [])
    return [s.id for s in sites.load().sites]


def _detailed(context: dg.AssetExecutionContext) -> bool:
    """Per-site details while the run's metadata stays small: a run of up to ``DETAIL_SITES_MAX`` site
    partitions, or one shard partition (a single materialization, one copy of the metadata) of that many sites."""
    if planning_partitions is None:
        return False
    keys = context.partition_keys
    if not sharded:
        return len(keys) <= DETAIL_SITES_MAX
    return len(keys) == 1 and len(run_site_ids(list(keys), site_partitions.get_partition_keys())) <= DETAIL_SITES_MAX


FAILURES_LISTED = 500  # failed sites named in a stage's metadata (the count is always complete)


def _stage_store(history: HistoryStoreResource, *deferred: str) -> StageStore:
    """The history store over one held connection for this stage (``storage.batch``); ``deferred``: tables the
    stage writes and never reads back, written once when the stage ends."""
    return StageStore(history.store().location, deferred=deferred)


def _sites_now(context: dg.AssetExecutionContext, sites: SitesResource, clock: ClockResource,
               store: HistoryStore | None = None) -> Iterator[tuple[str, SiteConfig, pd.Timestamp]]:
    """(site id, site, planning instant) for every site partition of this run; with ``store``, the site carries
    its switches in effect (a service-set value over the file's: ``control.switches``, read for all the run's
    sites in one query)."""
    sites_file = sites.load()
    wall = clock.run_wall(context)
    planning_clock = clock.clock()
    ids = _site_ids(context, sites)
    by_id = {s.id: s for s in sites_file.sites}  # ``get`` scans the list: per site, that is sites x sites
    files = [by_id[i] if i in by_id else sites_file.get(i) for i in ids]  # an unknown id: get's error
    for site_id, site in zip(ids, in_effect_many(store, files), strict=True):
        yield site_id, site, planning_clock.site_now(site, wall)


def _each_site(context: dg.AssetExecutionContext, sites: SitesResource, clock: ClockResource,
               meta: dict[str, Any], step: Callable[[str, SiteConfig, pd.Timestamp], None],
               store: HistoryStore | None = None, *, devices: bool = False,
               held: StageStore | None = None, failed: set[str] | None = None) -> list[str]:
    """Run ``step`` per site; a site's exception is logged and put in ``{site}/error``, the others go on.
    ``devices``: the step talks to the site's battery, so sites run concurrently (``control.fleet``: bounded
    workers, a deadline per site). The stage's per-site p50/p95 ms go in ``meta``; above
    ``DETAIL_SITES_MAX`` sites the per-site keys are replaced by the fleet summary. ``held``: the stage's
    store, which lets other writers in between sites; ``failed`` collects the failed sites' ids.
    Returns the problems (one line per failed site)."""
    items = [(site_id, (site, now)) for site_id, site, now in _sites_now(context, sites, clock, store)]
    report = fleet_run.run_sites(
        context.asset_key.to_user_string(), items, lambda site_id, item: step(site_id, *item),
        workers=fleet_run.fleet_workers() if devices else 1,
        between=held.breathe if held is not None else None)
    detailed = _detailed(context)
    problems: list[str] = []
    for o in report.failures:  # isolated: a site's error is data for the UI, not the end of the run
        context.log.error(f"{o.site_id}: {o.error}")
        meta[f"{o.site_id}/error"] = dg.MetadataValue.text(str(o.error))
        problems.append(f"{o.site_id}: {o.error}")
        if failed is not None:
            failed.add(o.site_id)
    if not detailed:
        for key in [k for k in meta if "/" in k]:
            del meta[key]
        meta["failed_sites"] = _problems_md(problems[:FAILURES_LISTED] + (
            [f"... {len(problems) - FAILURES_LISTED} more"] if len(problems) > FAILURES_LISTED else []))
    meta["stage_failures"] = dg.MetadataValue.json(
        [{"site_id": o.site_id, "error": o.error} for o in report.failures[:FAILURES_LISTED]])
    timing = report.summary()
    meta["stage_sites"] = timing["sites"]
    meta["stage_failed"] = timing["failed"]
    meta["stage_s"] = timing["wall_s"]
    meta["per_site_ms_p50"] = timing["p50_ms"]
    meta["per_site_ms_p95"] = timing["p95_ms"]
    meta["per_site_ms_max"] = timing["max_ms"]
    # the stage's wall time shared out: what one more site costs the cycle (sites overlap in device stages)
    meta["per_site_ms_amortised"] = round(timing["wall_s"] * 1000 / max(1, timing["sites"]), 2)
    # every site's own time, so that runs of several shards can be summarised as one fleet
    meta["per_site_ms_each"] = dg.MetadataValue.json([round(o.ms, 1) for o in report.outcomes])
    return problems


def _info(context: dg.AssetExecutionContext, text: str) -> None:
    """A per-site info line: one Dagster event each, so only on detailed (small) runs."""
    if _detailed(context):
        context.log.info(text)


def _problems_md(problems: list[str]) -> dg.MetadataValue:
    return dg.MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none")


@dg.asset(kinds={"python", "duckdb"}, description="Normalised import/export prices over the 48 h horizon "
          "(provider data stored in DuckDB `prices`; horizon padded and flagged where the provider is short).",
          pool="duckdb_history", check_specs=[dg.AssetCheckSpec("price_frame_valid", asset="price_forecast",
          description="<= 10% of the first 24 h filled for every site, and the pandera PriceFrame schema on the "
          "stored window (every site of a small run; one site per shared price frame on a fleet run)")],
          **COMMON)
def price_forecast(context: dg.AssetExecutionContext, sites: SitesResource, history: HistoryStoreResource,
                   clock: ClockResource) -> dg.MaterializeResult:
    store = _stage_store(history, ARCHIVE_TABLE)  # the archive of published forecasts is only read by backtests
    meta: dict[str, Any] = {}
    problems: list[str] = []
    shared = fleet_run.SharedPrices()  # one fetch per distinct provider section, shared by its sites
    # The schema check of the stored window: every site on a small run; on a fleet run one site per shared
    # price frame (its sites stored the same rows from it), as pandera costs ~0.1 s a call.
    detailed = _detailed(context)
    validated: set[tuple[str, str, float]] = set()

    def step(site_id: str, site: SiteConfig, now: pd.Timestamp) -> None:
        pf = cycle.price_forecast(site, now, store, fetcher=shared)
        f = pf.frame
        frame_key = shared.key(site, now, HORIZON_HOURS)
        if detailed or frame_key not in validated:
            validated.add(frame_key)
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
        _info(context, f"{site_id}: prices {now.isoformat()} coverage {pf.coverage:.0%}, filled {pf.filled}")
        meta[f"{site_id}/now"] = dg.MetadataValue.text(now.isoformat())
        meta[f"{site_id}/coverage"] = float(pf.coverage)
        meta[f"{site_id}/filled_fraction_24h"] = filled_24h
        meta[f"{site_id}/provenance"] = dg.MetadataValue.json(
            {str(k): int(v) for k, v in f["provenance"].value_counts().items()})
        meta[f"{site_id}/import_max"] = float(f["import_price"].max())
        meta[f"{site_id}/export_min"] = float(f["export_price"].min())
        meta[f"{site_id}/spike_intervals"] = int((f["spike_status"] != "none").sum())

    with store.held():
        problems += _each_site(context, sites, clock, meta, step, held=store)
    meta["price_fetches"] = shared.fetches
    meta["stored_windows_validated"] = len(validated) if not detailed else meta["stage_sites"]
    meta["price_fetches_shared"] = shared.shared
    check = dg.AssetCheckResult(check_name="price_frame_valid", passed=not problems,
                                metadata={"problems": _problems_md(problems)})
    return dg.MaterializeResult(metadata=meta, check_results=[check])


@dg.asset(kinds={"python", "pvlib"}, description="Solar kW on the 5-min grid, 48 h ahead (Solcast P50 with "
          "P10/P90 where the site has a rooftop resource, else pvlib clear-sky x climatology; scaled by the last "
          "half hour's measured production where telemetry has it).", pool="duckdb_history", **COMMON)
def solar_forecast(context: dg.AssetExecutionContext, sites: SitesResource, history: HistoryStoreResource,
                   clock: ClockResource) -> dg.MaterializeResult:
    store = _stage_store(history, "forecasts")
    meta: dict[str, Any] = {}

    def step(site_id: str, site: SiteConfig, now: pd.Timestamp) -> None:
        solar = cycle.solar_forecast(site, now, store)
        meta[f"{site_id}/energy_kwh_48h"] = float(solar.sum() / 12)
        meta[f"{site_id}/peak_kw"] = float(solar.max())
        meta[f"{site_id}/provenance"] = dg.MetadataValue.json(solar.attrs.get("provenance", {}))

    with store.held():
        _each_site(context, sites, clock, meta, step, held=store)
    return dg.MaterializeResult(metadata=meta)


@dg.asset(kinds={"python"}, description="Household load kW, 48 h ahead (measured history profile when "
          "there is a week of telemetry, else a real household profile; plus the last half hour's measured "
          "difference, fading over half an hour).", pool="duckdb_history", **COMMON)
def load_forecast(context: dg.AssetExecutionContext, sites: SitesResource, history: HistoryStoreResource,
                  clock: ClockResource) -> dg.MaterializeResult:
    store = _stage_store(history, "forecasts")
    meta: dict[str, Any] = {}

    def step(site_id: str, site: SiteConfig, now: pd.Timestamp) -> None:
        load, model = cycle.load_forecast(site, now, store)
        meta[f"{site_id}/model"] = dg.MetadataValue.text(model)
        meta[f"{site_id}/energy_kwh_48h"] = float(load.sum() / 12)

    with store.held():
        _each_site(context, sites, clock, meta, step, held=store)
    return dg.MaterializeResult(metadata=meta)


def _stored_series(store: HistoryStore, site_id: str, kind: str, idx: pd.DatetimeIndex) -> pd.Series:
    df = store.query(
        "SELECT interval_start, value FROM forecasts WHERE site_id = ? AND kind = ? AND interval_start >= ? "
        "AND interval_start <= ? AND issued_at = ? ORDER BY interval_start",
        [site_id, kind, idx[0].to_pydatetime(), idx[-1].to_pydatetime(), idx[0].to_pydatetime()],
    )
    s = pd.Series(df["value"].to_numpy(), index=pd.to_datetime(df["interval_start"], utc=True))
    if len(s.reindex(idx).dropna()) < len(idx):
        raise LookupError(f"site {site_id!r}: no {kind} forecast issued at {idx[0].isoformat()} "
                          f"(the {kind}_forecast step failed or did not run for this slot)")
    return s.reindex(idx)


@dg.asset(kinds={"python", "highspy"}, deps=[price_forecast, solar_forecast, load_forecast],
          description="48 h charge/discharge plan (the one planner: a warm HiGHS LP on the tiered horizon, the "
          "same as the backtest's) with actions per 5-min slot and savings vs a no-battery baseline; stored in "
          "DuckDB `plans` + `schedule`.", pool="duckdb_history",
          check_specs=[dg.AssetCheckSpec("plan_feasible", asset="battery_schedule", description="energy "
          "balance per interval, SOC within reserve..100%, power and grid limits, no charge+discharge at once")],
          **COMMON)
def battery_schedule(context: dg.AssetExecutionContext, sites: SitesResource, history: HistoryStoreResource,
                     clock: ClockResource, fleet: BatteryFleetResource) -> dg.MaterializeResult:
    store = _stage_store(history, "plans", "schedule", "telemetry")
    ctx = control_context(history, clock, fleet, store)
    meta: dict[str, Any] = {}
    violations: list[str] = []
    detailed = _detailed(context)

    def step(site_id: str, site: SiteConfig, now: pd.Timestamp) -> None:
        pf = cycle.stored_price_forecast(site, now, store)
        idx = pf.frame.index
        solar = _stored_series(store, site.id, "solar", idx)
        load = _stored_series(store, site.id, "load", idx)
        soc, soc_source, soc_error = cycle.read_soc(ctx, site)
        if soc_error:
            context.log.warning(f"{site_id}: could not read the battery ({soc_error}); planning from {soc_source}")
        plan = cycle.plan_schedule(site, now, pf.frame, solar, load, soc, store,
                                   stale_prices=pf.message if pf.stale else None)
        r = plan.result
        violations.extend(f"{site_id}: {v}" for v in plan_violations(r.intervals, cycle.planner_for(site).settings, soc))
        _info(context, f"{site_id}: plan {plan.plan_id} {r.status} via {r.solver}, cost {r.cost:.2f} vs "
                       f"baseline {r.baseline_cost:.2f} ({r.solve_ms:.0f} ms)")
        # the plot and the action table are the costly part of the metadata: small runs only
        meta.update(schedule_metadata(site_id, site, now, plan.plan_id, r, soc, soc_source, detailed=detailed))

    with store.held():
        problems = _each_site(context, sites, clock, meta, step, store, devices=True, held=store)
    check = dg.AssetCheckResult(check_name="plan_feasible", passed=not violations and not problems,
                                metadata={"violations": _problems_md(violations),
                                          "sites_without_a_plan": _problems_md(problems)})
    return dg.MaterializeResult(metadata=meta, check_results=[check])


def _plan_of_slot(store: HistoryStore, site_id: str, now: pd.Timestamp,
                  consequence: str = "nothing pushed") -> tuple[dict[str, Any], pd.DataFrame]:
    """This slot's plan (its row in ``plans`` and its intervals); a site without one is named, never guessed."""
    found = store.read_plan(site_id, cycle.plan_id_for(site_id, now))
    if found is None or found[1].empty:  # no row, or a plan whose intervals were never stored
        raise LookupError(f"site {site_id!r}: no plan for the slot {now.isoformat()} (battery_schedule failed or did "
                          f"not run for it); {consequence}")
    return found


@dg.asset(kinds={"python", "tesla"}, deps=[battery_schedule], description="The TOU tariff (48 half-hours, local "
          "time) that makes a tariff-driven battery follow the plan: uploaded to Tesla/Sigenergy batteries through "
          "the arbiter (as the optimizer) only when it changed materially, stored (with the reply and a diff) in "
          "DuckDB `tariff_payloads` for every site.", pool="duckdb_history", **COMMON)
def tou_tariff_payload(context: dg.AssetExecutionContext, sites: SitesResource, history: HistoryStoreResource,
                       clock: ClockResource, fleet: BatteryFleetResource) -> dg.MaterializeResult:
    store = _stage_store(history)
    ctx = control_context(history, clock, fleet, store)
    meta: dict[str, Any] = {}

    def step(site_id: str, site: SiteConfig, now: pd.Timestamp) -> None:
        pf = cycle.stored_price_forecast(site, now, store)
        out = sync_tou_schedule(ctx, site, now, prices=pf.frame, scheduled=True)
        _info(context, f"{site_id}: tariff {out.get('format')} {out.get('action')}: {out.get('reason')}")
        meta[f"{site_id}/decision"] = dg.MetadataValue.text(f"{out.get('action')}: {out.get('reason')}"
                                                            + (f" ({out['note']})" if out.get("note") else ""))
        meta[f"{site_id}/hash"] = dg.MetadataValue.text(str(out.get("payload_hash")))
        meta[f"{site_id}/sent"] = dg.MetadataValue.bool(bool(out.get("sent")))
        meta[f"{site_id}/changed_half_hours"] = int(out.get("changed_periods") or 0)
        meta[f"{site_id}/max_change_per_kwh"] = float(out.get("max_change") or 0.0)

    with store.held():
        _each_site(context, sites, clock, meta, step, store, devices=True, held=store)
    return dg.MaterializeResult(metadata=meta)


COMMANDS_CHECK = "commands_carried_out"
FAILED_SITE_IDS = "failed_site_ids"  # battery_commands metadata: every failed site (telemetry and ev skip them)


@dg.asset(kinds={"python", "modbus"}, deps=[battery_schedule], description="The current plan slot, asked of the "
          "arbiter as the optimizer: carried out on the battery (verified by read-back) unless a higher owner holds "
          "it (a manual force, a spike, an automation), in which case the yield is recorded with the holder and "
          "its lease. Every command is in DuckDB `commands`, every request in `control_requests`. A site whose "
          "command failed fails the `commands_carried_out` check and is skipped by `telemetry` and `ev_charging` "
          "for this slot; the other sites go on.", pool="modbus",
          check_specs=[dg.AssetCheckSpec(COMMANDS_CHECK, asset="battery_commands", description="every site's "
          "slot was carried out on its battery, yielded to a higher owner, or not pushed with optimization off; "
          "names each site whose command failed, with its error")],
          **COMMON)
def battery_commands(context: dg.AssetExecutionContext, sites: SitesResource, history: HistoryStoreResource,
                     clock: ClockResource, fleet: BatteryFleetResource) -> dg.MaterializeResult:
    store = _stage_store(history)
    ctx = control_context(history, clock, fleet, store)
    meta: dict[str, Any] = {}
    failures: list[str] = []
    refused: list[dict[str, str]] = []
    failed_ids: set[str] = set()

    def step(site_id: str, site: SiteConfig, now: pd.Timestamp) -> None:
        slot = cycle.current_slot(_plan_of_slot(store, site_id, now)[1], now)
        out = cycle.push_slot(ctx, site, slot)
        meta[f"{site_id}/action"] = dg.MetadataValue.text(slot.describe())
        if out is None:  # optimization off and the battery already its own
            meta[f"{site_id}/decision"] = dg.MetadataValue.text("optimization off: nothing pushed, the battery "
                                                                "runs its own self-consumption")
            meta[f"{site_id}/outcome"] = dg.MetadataValue.text("optimization_off")
            return
        meta[f"{site_id}/decision"] = dg.MetadataValue.text(out.describe())
        meta[f"{site_id}/holder"] = dg.MetadataValue.text(
            out.holder.describe() if out.yielded and out.holder is not None else "optimizer")
        meta[f"{site_id}/written"] = dg.MetadataValue.json(getattr(out.result, "written", None) or {})
        meta[f"{site_id}/outcome"] = dg.MetadataValue.text(out.outcome + (f": {out.as_dict()['error']}"
                                                                          if out.as_dict()["error"] else ""))
        if not (out.ok or out.yielded):
            failures.append(f"{site_id}: {out.describe()}")
            refused.append({"site_id": site_id, "error": out.describe()})
            failed_ids.add(site_id)

    with store.held():
        failures += _each_site(context, sites, clock, meta, step, store, devices=True, held=store, failed=failed_ids)
    if refused:  # commands that failed without an exception are failures of this stage too
        meta["stage_failures"] = dg.MetadataValue.json(meta["stage_failures"].value + refused[:FAILURES_LISTED])
        meta["stage_failed"] = len(failures)
    meta[FAILED_SITE_IDS] = dg.MetadataValue.json(sorted(failed_ids))
    # The failure stays loud (an ERROR check, the run's error log, `powersync demo`'s exit status) without
    # raising: a raised failure would make Dagster skip telemetry and ev_charging for every site of the run.
    summary = "battery command failed: " + "; ".join(failures[:FAILURES_LISTED]) + (
        f"; ... {len(failures) - FAILURES_LISTED} more" if len(failures) > FAILURES_LISTED else "")
    if failures:
        context.log.error(summary)
    check = dg.AssetCheckResult(check_name=COMMANDS_CHECK, passed=not failures, severity=dg.AssetCheckSeverity.ERROR,
                                metadata={"failed": len(failed_ids), "failed_sites": _problems_md(
                                    failures[:FAILURES_LISTED]), "summary": dg.MetadataValue.text(
                                    summary if failures else "every site's slot carried out")})
    return dg.MaterializeResult(metadata=meta, check_results=[check])


def _commands_failed(context: dg.AssetExecutionContext) -> set[str]:
    """The sites whose battery command failed in this run (``battery_commands``' ``failed_site_ids``): their
    read-back and car are skipped for this slot, as a later stage skips a site with no plan for the slot. A
    run without ``battery_commands`` (a stage re-run on its own) skips none."""
    failed: set[str] = set()
    for entry in context.instance.all_logs(context.run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        event = entry.dagster_event
        mat = event.event_specific_data.materialization if event is not None else None
        if mat is not None and mat.asset_key == battery_commands.key and FAILED_SITE_IDS in mat.metadata:
            failed.update(mat.metadata[FAILED_SITE_IDS].value or [])
    return failed


def _skip_if_command_failed(failed: set[str], site_id: str, consequence: str) -> None:
    if site_id in failed:
        raise LookupError(f"site {site_id!r}: its battery command failed this slot (see battery_commands' "
                          f"{COMMANDS_CHECK} check); {consequence}")


@dg.asset(kinds={"python", "modbus"}, deps=[battery_commands], description="The battery read back after the "
          "command (SOC, powers with named directions); history in DuckDB `telemetry`.", pool="modbus", **COMMON)
def telemetry(context: dg.AssetExecutionContext, sites: SitesResource, history: HistoryStoreResource,
              clock: ClockResource, fleet: BatteryFleetResource) -> dg.MaterializeResult:
    store = _stage_store(history, "telemetry")
    ctx = control_context(history, clock, fleet, store)
    meta: dict[str, Any] = {}
    failed = _commands_failed(context)

    def step(site_id: str, site: SiteConfig, now: pd.Timestamp) -> None:
        _skip_if_command_failed(failed, site_id, "not read back")
        with ctx.battery(site) as device:
            t = device.read_telemetry()
        store.upsert_telemetry(site.id, t.ts, t.as_row())
        meta[f"{site_id}/soc_pct"] = round(float(t.soc) * 100, 2)
        meta[f"{site_id}/mode"] = dg.MetadataValue.text(str(t.mode))
        meta[f"{site_id}/battery_kw"] = float(np.round(t.battery_charge_kw - t.battery_discharge_kw, 3))

    with store.held():
        _each_site(context, sites, clock, meta, step, devices=True, held=store)
    return dg.MaterializeResult(metadata=meta)


@dg.asset(kinds={"python", "ocpp"}, deps=[battery_commands], description="The car's charging current for this "
          "slot (sites with an `ev:` section): the session planned in its mode on the slot's forecasts and the "
          "battery's plan, shared within the connection limit, and sent to the charger through the arbiter as `ev` "
          "unless a person's start/stop or a safety hold has it. Setpoints in DuckDB `ev_setpoints`, requests in "
          "`control_requests`. An unreachable charger is reported, not fatal: the battery's slot stands.",
          pool="ev_charger", **COMMON)
def ev_charging(context: dg.AssetExecutionContext, sites: SitesResource, history: HistoryStoreResource,
                clock: ClockResource, fleet: BatteryFleetResource) -> dg.MaterializeResult:
    # Per-call connections, not a held stage store: the OCPP central system answering this stage writes to the
    # same DuckDB file, and would wait on a held lock while this stage waits on it.
    store = history.store()
    ctx = control_context(history, clock, fleet, store)
    meta: dict[str, Any] = {}
    failed = _commands_failed(context)

    def step(site_id: str, site: SiteConfig, now: pd.Timestamp) -> None:
        if site.ev is None:
            meta[f"{site_id}/ev"] = dg.MetadataValue.text("no ev section")
            return
        _skip_if_command_failed(failed, site_id, "the car is not planned")
        plan, _ = _plan_of_slot(store, site_id, now, "the car is not planned")
        pf = cycle.stored_price_forecast(site, now, store)
        idx = pf.frame.index
        out = ev_step(ctx, site, now, pf.frame, _stored_series(store, site.id, "solar", idx),
                      _stored_series(store, site.id, "load", idx), float(plan["soc_initial"]))
        command = out.get("command") or {}
        text = out.get("error") or (f"{out.get('amps')} A: {command.get('outcome')}"
                                    + (f" ({command['arbiter']['summary']})" if command.get("arbiter") else "")
                                    if command else out.get("note", ""))
        meta[f"{site_id}/ev"] = dg.MetadataValue.text(str(text))
        meta[f"{site_id}/ev_cycle"] = dg.MetadataValue.json(out)
        if not out.get("ok", True):
            context.log.warning(f"{site_id}: ev: {text}")

    _each_site(context, sites, clock, meta, step)
    return dg.MaterializeResult(metadata=meta)


PLANNING_ASSETS = [price_forecast, solar_forecast, load_forecast, battery_schedule, tou_tariff_payload,
                   battery_commands, telemetry, ev_charging]
