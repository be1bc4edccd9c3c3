"""Jobs of live operation: one spike-watch pass ("check now" from the UI, the same code the sensor runs) and carrying
out one automation firing. Both use the in-process executor: a run is seconds of launch overhead already."""

import json

import dagster as dg

from ...control.automations import execute_firing, load_firing
from ...control.spike_watch import run_spike_watch
from ..resources import (
    BatteryFleetResource,
    ClockResource,
    HistoryStoreResource,
    SitesResource,
    control_context,
)


class SpikeWatchConfig(dg.Config):
    site_id: str | None = None  # None = every site


@dg.op(description="Fetch the current dispatch price, decide per site, command and verify the battery, record "
       "and notify (the same code the spike watch sensor runs in its fast path).")
def spike_watch_op(context: dg.OpExecutionContext, config: SpikeWatchConfig, sites: SitesResource,
                   history: HistoryStoreResource, fleet: BatteryFleetResource, clock: ClockResource) -> None:
    ctx = control_context(history, clock, fleet)
    report = run_spike_watch(sites.load().sites, ctx, only_site=config.site_id)
    context.log.info(report.summary())
    changed = [r for r in report.changed if r.event is not None]
    if changed:
        context.log_event(dg.AssetMaterialization("spike_events", metadata=event_metadata(changed)))
    failed = [r for r in report.results if r.error]
    if failed:
        raise dg.Failure("spike watch failed for " + "; ".join(r.summary() for r in failed))


def event_metadata(results: list) -> dict[str, dg.MetadataValue]:
    meta: dict[str, dg.MetadataValue] = {}
    for r in results:
        ev = r.event
        meta[f"{r.site_id}/decision"] = dg.MetadataValue.text(f"{r.decision.kind}: {r.decision.reason}")
        meta[f"{r.site_id}/status"] = dg.MetadataValue.text(ev.status)
        meta[f"{r.site_id}/event_id"] = dg.MetadataValue.text(ev.event_id)
        meta[f"{r.site_id}/peak_rrp"] = dg.MetadataValue.float(float(ev.peak_rrp))
        if ev.verified_at is not None:
            meta[f"{r.site_id}/seen_to_verified_s"] = dg.MetadataValue.float(
                round((ev.verified_at - ev.seen_at).total_seconds(), 3))
        if ev.restore_verified_at is not None and ev.end_seen_at is not None:
            meta[f"{r.site_id}/end_seen_to_restored_s"] = dg.MetadataValue.float(
                round((ev.restore_verified_at - ev.end_seen_at).total_seconds(), 3))
        if ev.last_error:
            meta[f"{r.site_id}/last_error"] = dg.MetadataValue.text(ev.last_error)
    return meta


@dg.job(executor_def=dg.in_process_executor, tags={"powersync/live": "spike_watch"},
        description="One AEMO spike-watch pass, the same the sensor runs every minute ('check now' from the "
        "launchpad).")
def spike_watch_job() -> None:
    spike_watch_op()


class AutomationFiringConfig(dg.Config):
    firing_id: str


@dg.op(description="Carry out one automation firing's actions (battery commands verified by read-back, "
       "notifications) and record each outcome on the firing.")
def run_automation_firing(context: dg.OpExecutionContext, config: AutomationFiringConfig, sites: SitesResource,
                          history: HistoryStoreResource, fleet: BatteryFleetResource, clock: ClockResource) -> None:
    ctx = control_context(history, clock, fleet)
    store = ctx.store
    firing = load_firing(store, config.firing_id)
    status = store.query("SELECT status FROM automation_firings WHERE firing_id = ?", [config.firing_id])
    if not status.empty and status["status"].iloc[0] != "requested":
        context.log.info(f"firing {config.firing_id} already carried out ({status['status'].iloc[0]}); nothing to do")
        return
    site = sites.site(firing.site_id)
    results = execute_firing(ctx, site, firing, run_id=context.run_id)
    context.log.info(f"{firing.firing_id}: {firing.reason}")
    context.log_event(dg.AssetMaterialization("automation_firings", metadata={
        "firing_id": dg.MetadataValue.text(firing.firing_id),
        "reason": dg.MetadataValue.text(firing.reason),
        "results": dg.MetadataValue.json(json.loads(json.dumps([r.__dict__ for r in results], default=str))),
    }))
    failed = [r for r in results if r.outcome == "failed"]
    if failed:
        raise dg.Failure(f"automation {firing.rule_id}: " + "; ".join(f"{r.action}: {r.detail}" for r in failed))


@dg.job(executor_def=dg.in_process_executor, tags={"powersync/live": "automation"},
        description="Carry out one automation firing (requested by the automations sensor).")
def automation_actions_job() -> None:
    run_automation_firing()
