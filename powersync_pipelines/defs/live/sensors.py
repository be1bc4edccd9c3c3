"""Sensors of live operation: the AEMO spike watch (every minute), automations, and the early re-plan trigger.

**The spike watch commands the battery from the sensor itself**, not through a run: the latency that matters is
"battery command verified after the watch sees the price", and a run pays the run queue, a run-worker process
and the code location's load before its first Modbus write, about ten times the sensor's own time
(``benchmarks/bench_spike_latency.py`` keeps the measurements). What a run would give is kept another way: each
state change is recorded as a materialization of the ``spike_events`` asset (with the latency in its metadata),
every request is in DuckDB ``control_requests`` and every command in ``commands``, and ``spike_watch_job`` runs
the same code for a manual "check now". The sensor stays well inside the 60-s evaluation timeout: one listing
request per tick (the report zip only when a new interval appears), commands only on transitions.
"""

import hashlib
import json
import os

import dagster as dg
import pandas as pd

from ...control import live_store
from ...control.automations import evaluate_site, gather_facts, needs_soc, pending_firings
from ...control.reopt_trigger import PriceSnapshot, dispatch_snapshot, material_change, snapshot
from ...control.spike import spike_params
from ...control.spike_watch import run_spike_watch
from ..planning.jobs import reoptimize_job
from ..planning.partitions import all_sites_tags
from ..resources import (
    BatteryFleetResource,
    ClockResource,
    HistoryStoreResource,
    SitesResource,
    control_context,
)
from .jobs import automation_actions_job, event_metadata, spike_watch_job


def _interval(env: str, default: int) -> int:
    """Sensor spacing from the environment (tests and the benchmark shorten it; production keeps 60 s)."""
    raw = os.environ.get(env, "")
    try:
        return max(1, int(raw)) if raw else default
    except ValueError:
        return default


SPIKE_WATCH_INTERVAL_S = _interval("POWERSYNC_SPIKE_WATCH_INTERVAL_S", 60)
AUTOMATIONS_INTERVAL_S = _interval("POWERSYNC_AUTOMATIONS_INTERVAL_S", 60)
REOPT_TRIGGER_INTERVAL_S = _interval("POWERSYNC_REOPT_TRIGGER_INTERVAL_S", 60)


@dg.sensor(name="aemo_spike_watch", minimum_interval_seconds=SPIKE_WATCH_INTERVAL_S,
           default_status=dg.DefaultSensorStatus.RUNNING, jobs=[spike_watch_job],
           description="Every minute: each site's region dispatch price (NEMWEB DispatchIS). RRP >= threshold "
           "-> save state, force discharge (Sungrow/Sigenergy) or spike tariff (Tesla), notify; RRP < threshold - "
           "hysteresis -> restore and verify, retried every minute until it holds. State in DuckDB spike_events.")
def aemo_spike_watch(context: dg.SensorEvaluationContext, sites: SitesResource, history: HistoryStoreResource,
                     fleet: BatteryFleetResource, clock: ClockResource) -> dg.SensorResult:
    report = run_spike_watch(sites.load().sites, control_context(history, clock, fleet))
    cursor = json.dumps({"tick": report.started_at.isoformat(),
                         "open": {r.site_id: r.event.status for r in report.results
                                  if r.event is not None and r.event.open}}, sort_keys=True)
    changed = [r for r in report.changed if r.event is not None]
    for r in report.results:
        if r.error:
            context.log.error(r.summary())
    if not changed:
        return dg.SensorResult(skip_reason=dg.SkipReason(report.summary()), cursor=cursor)
    context.log.info(report.summary())
    return dg.SensorResult(asset_events=[dg.AssetMaterialization("spike_events", metadata=event_metadata(changed))],
                           cursor=cursor)


@dg.sensor(name="automations", minimum_interval_seconds=AUTOMATIONS_INTERVAL_S,
           default_status=dg.DefaultSensorStatus.RUNNING, jobs=[automation_actions_job],
           description="Evaluates every site's automation rules (time window, price, SOC, spike start/end) on "
           "their rising edge; each firing is recorded with its reason and carried out by automation_actions_job.")
def automations(context: dg.SensorEvaluationContext, sites: SitesResource, history: HistoryStoreResource,
                fleet: BatteryFleetResource, clock: ClockResource) -> dg.SensorResult:
    ctx = control_context(history, clock, fleet)
    store = ctx.store
    now = ctx.clock.wall()
    requests: list[dg.RunRequest] = []
    notes: list[str] = []
    for site in sites.load().sites:
        if not site.automations:
            continue
        read_soc = None
        if needs_soc(site.automations):
            def read_soc(site=site) -> float:
                with ctx.battery(site) as dev:
                    return float(dev.read_telemetry().soc)
        try:
            clock_now = ctx.clock.site_now(site, now)
            facts = gather_facts(site, store, now, clock_now + (now - now.floor("5min")), read_soc)
            firings, evaluations = evaluate_site(site, store, facts)
        except Exception as exc:  # one site's bad data must not stop the other sites' rules
            context.log.error(f"{site.id}: automations not evaluated: {type(exc).__name__}: {exc}")
            notes.append(f"{site.id}: error {exc}")
            continue
        notes += [f"{site.id}/{e.rule_id}: {'FIRES' if e.fires else 'no'} ({e.reason})" for e in evaluations]
        for fid, rule_id in pending_firings(store, site.id, now):
            requests.append(dg.RunRequest(
                run_key=fid, job_name="automation_actions_job",
                run_config={"ops": {"run_automation_firing": {"config": {"firing_id": fid}}}},
                tags={"powersync/site": site.id, "powersync/automation": rule_id}))
        for f in firings:
            if f.new:
                context.log.info(f"automation {f.firing_id} fires: {f.reason}")
    if not requests:
        return dg.SensorResult(skip_reason=dg.SkipReason("; ".join(notes) or "no site has automations"))
    return dg.SensorResult(run_requests=requests)


# -- early re-optimisation ------------------------------------------------------------------------------
OCTOPUS_PROBE_EVERY = pd.Timedelta(minutes=15)


def _probe(site, store, now: pd.Timestamp, last_probe: str | None) -> PriceSnapshot | None:
    """The site's current price snapshot, cheaply: AEMO-family from what the spike watch saw; Amber every
    tick; Octopus every 15 minutes; replay/saved files never (the schedule covers them)."""
    kind = site.provider.kind
    if kind in ("aemo", "flow_power", "globird"):
        seen = live_store.latest_dispatch_seen(store, site.provider.region or "")
        if seen is None or now - seen.interval_start > pd.Timedelta(minutes=15):
            return None
        return dispatch_snapshot(seen.interval_start, seen.rrp)
    if kind == "amber" or (kind == "octopus" and (last_probe is None or
                                                  now - pd.Timestamp(last_probe) >= OCTOPUS_PROBE_EVERY)):
        from ...prices.registry import fetch_price_frame

        horizon = 3 if kind == "amber" else 48
        return snapshot(fetch_price_frame(site, now, horizon_hours=horizon), now)
    return None


def _reoptimize_in_flight(instance: dg.DagsterInstance) -> bool:
    records = instance.get_run_records(
        dg.RunsFilter(job_name="reoptimize_job", statuses=[dg.DagsterRunStatus.QUEUED,
                                                            dg.DagsterRunStatus.NOT_STARTED,
                                                            dg.DagsterRunStatus.STARTING]), limit=1)
    return bool(records)


@dg.sensor(name="reoptimize_on_price_change", minimum_interval_seconds=REOPT_TRIGGER_INTERVAL_S,
           default_status=dg.DefaultSensorStatus.RUNNING, job=reoptimize_job,
           description="Re-plans every site early (one run for all sites) when prices change materially: a new "
           "AEMO dispatch interval with a large move, a new Amber 5-min update, a new Octopus day.")
def reoptimize_on_price_change(context: dg.SensorEvaluationContext, sites: SitesResource,
                               history: HistoryStoreResource) -> dg.SensorResult:
    store = history.store()
    now = pd.Timestamp.now(tz="UTC")
    state = json.loads(context.cursor) if context.cursor else {}
    snaps: dict[str, dict] = dict(state.get("snapshots", {}))
    probed: dict[str, str] = dict(state.get("probed", {}))
    reasons, notes = [], []
    for site in sites.load().sites:
        try:
            snap = _probe(site, store, now, probed.get(site.id))
        except Exception as exc:  # a provider outage is the schedule's problem (it falls back); note it here
            notes.append(f"{site.id}: probe failed ({type(exc).__name__}: {exc})")
            continue
        if snap is None:
            continue
        probed[site.id] = now.isoformat()
        prev = PriceSnapshot.from_json(snaps[site.id]) if site.id in snaps else None
        params = spike_params(site)
        why = material_change(prev, snap, params.threshold if params else None)
        snaps[site.id] = snap.to_json()
        if why:
            reasons.append(f"{site.id}: {why}")
        else:
            notes.append(f"{site.id}: no material change" if prev else f"{site.id}: baseline recorded")
    cursor = json.dumps({"snapshots": snaps, "probed": probed}, sort_keys=True)
    if not reasons:
        return dg.SensorResult(skip_reason=dg.SkipReason("; ".join(notes) or "no live price source to watch"),
                               cursor=cursor)
    if _reoptimize_in_flight(context.instance):
        return dg.SensorResult(skip_reason=dg.SkipReason("material change, but a re-plan is already queued: "
                                                         + "; ".join(reasons)), cursor=cursor)
    digest = hashlib.sha1("|".join(sorted(reasons)).encode()).hexdigest()[:10]
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"early:{now:%Y%m%dT%H%M}:{digest}",
                                    tags={**all_sites_tags(), "powersync/trigger": "; ".join(reasons)[:200]})],
        cursor=cursor)
