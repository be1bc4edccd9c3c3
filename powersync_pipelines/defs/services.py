"""Every service of the registry (``control.services``) as a Dagster job, and the restore watch.

One ``service_<name>`` job per service, its launchpad config generated from the service's typed parameters
(types, units, ranges and choices in the field descriptions), so the UI, the CLI and Home Assistant take the same
input. The job calls the same ``run_service`` as ``powersync service``; a refused, failed or yielded command
fails the run with the reason. Device ops are in the ``battery`` pool: two runs never drive a battery at once
(the driver's writer lock backs this up across processes).
"""

from typing import Any

import dagster as dg

from ..control.restore import due, settle
from ..control.services import SERVICES, Param, Service, ServiceInputError, run_service
from .resources import (
    BatteryFleetResource,
    ClockResource,
    HistoryStoreResource,
    SitesResource,
    control_context,
)

_DAGSTER_TYPES = {int: dg.Int, float: dg.Float, str: dg.String, bool: dg.Bool}


def _field(p: Param) -> dg.Field:
    # text for "none"-able numbers (an export limit of 'none'), the declared type otherwise
    kind = dg.String if p.none_text else _DAGSTER_TYPES[p.kind]
    return dg.Field(dg.Noneable(kind), is_required=False, default_value=None, description=p.describe())


def service_config_schema(service: Service) -> dict[str, dg.Field]:
    return {"site_id": dg.Field(dg.String, description="site id in the sites file"),
            **{p.name: _field(p) for p in service.params}}


def _service_job(service: Service) -> dg.JobDefinition:
    name = service.name

    @dg.op(name=f"{name}_op", description=service.help, pool="battery", config_schema=service_config_schema(service))
    def service_op(context: dg.OpExecutionContext, sites: SitesResource, history: HistoryStoreResource,
                   clock: ClockResource, fleet: BatteryFleetResource) -> dict:
        config = dict(context.op_config)
        site = sites.site(config.pop("site_id"))
        ctx = control_context(history, clock, fleet)
        try:
            result = run_service(name, site, config, ctx)
        except ServiceInputError as exc:
            raise dg.Failure(description=str(exc)) from None
        meta = {k: dg.MetadataValue.text(str(result.get(k))) for k in ("outcome", "decision", "error", "command_id")
                if k in result}
        if "written" in result:
            meta["written"] = dg.MetadataValue.json(result["written"])
            meta["readback"] = dg.MetadataValue.json(result["readback"])
        context.add_output_metadata(meta)
        if not result.get("ok"):
            raise dg.Failure(description=f"{name} on {site.id}: {result.get('outcome', 'failed')}: {result.get('error')}",
                             metadata=meta)
        return result

    @dg.job(name=f"service_{name}", executor_def=dg.in_process_executor, description=service.help,
            tags={"powersync/service": name, "powersync/owner": service.owner or "read"})
    def service_job() -> None:
        service_op()

    return service_job


SERVICE_JOBS = [_service_job(s) for s in SERVICES]


def service_job(name: str) -> dg.JobDefinition:
    """The Dagster job of service ``name``."""
    return next(j for j in SERVICE_JOBS if j.name == f"service_{name}")


# -- the restore watch ---------------------------------------------------------------------------------------
@dg.op(description="Settle every site whose hold lapsed in the control ledger: the state saved before the forced "
       "mode is written back and read back (as safety); a restore that failed is retried on the next tick.",
       pool="battery", config_schema={"site_id": dg.Field(dg.Noneable(dg.String), is_required=False,
                                                           default_value=None)})
def restore_expired_op(context: dg.OpExecutionContext, sites: SitesResource, history: HistoryStoreResource,
                       clock: ClockResource, fleet: BatteryFleetResource) -> None:
    ctx = control_context(history, clock, fleet)
    only = context.op_config.get("site_id")
    loaded = sites.load()
    failures = []
    for site_id in due(ctx):
        if only is not None and site_id != only:
            continue
        try:
            site = loaded.get(site_id)
        except ValueError as exc:
            failures.append(f"{site_id}: {exc}")
            continue
        for out in settle(ctx, site):
            context.log.info(f"{site_id}: {out.describe()}")
            if not (out.ok or out.yielded):
                failures.append(f"{site_id}: {out.describe()}")
    if failures:
        raise dg.Failure(description="restore failed: " + "; ".join(failures))


@dg.job(executor_def=dg.in_process_executor, tags={"powersync/service": "restore_expired"},
        description="Put back what a lapsed hold of the control ledger left on the battery (or inverter).")
def battery_restore_expired_job() -> None:
    restore_expired_op()


@dg.sensor(job=battery_restore_expired_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Every 30 s: did a hold in the control ledger lapse (its lease ran out, also after a crash), "
           "or is a failed restore waiting? Then settle that site.")
def battery_restore_watch(context: dg.SensorEvaluationContext, history: HistoryStoreResource,
                          clock: ClockResource, fleet: BatteryFleetResource) -> Any:
    ctx = control_context(history, clock, fleet)
    now = ctx.clock.wall()
    sites = due(ctx, now)
    if not sites:
        return dg.SkipReason("no lapsed hold and no failed restore")
    stamp = now.floor("30s").isoformat()
    return [dg.RunRequest(run_key=f"restore:{site_id}:{stamp}",
                          run_config={"ops": {"restore_expired_op": {"config": {"site_id": site_id}}}})
            for site_id in sites]
