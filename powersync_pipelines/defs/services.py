"""Battery services as Dagster jobs (one ``service_<name>`` job per service, launched with run config from the
UI), and the watch that restores an expired forced mode (also after a crash).

The jobs call the same ``devices.services.run_service`` as ``powersync service``; a refused or failed command
fails the run with the driver's reason. Every device op is in the ``battery`` pool so two runs never drive the
same battery at once (the driver's writer lock backs this up across processes).
"""

from typing import Any

import dagster as dg
import pandas as pd

from ..devices.services import SERVICES
from .resources import BatteryFleetResource, HistoryStoreResource, SitesResource


class ServiceConfig(dg.Config):
    """Parameters of ``powersync service``; each service reads the ones it needs."""

    site_id: str
    duration_minutes: int | None = None
    percent: float | None = None
    kw: float | None = None
    watts: str | None = None
    mode: str | None = None
    export: str | None = None
    enabled: bool | None = None
    period: str | None = None


def _site_with_endpoint(site: Any, fleet: BatteryFleetResource) -> Any:
    if site.id in fleet.endpoints and site.battery.host is not None:
        host, _, port = fleet.endpoints[site.id].rpartition(":")
        return site.model_copy(update={"battery": site.battery.model_copy(update={"host": host, "port": int(port)})})
    return site


def _service_job(name: str, description: str) -> dg.JobDefinition:
    @dg.op(name=f"{name}_op", description=description, pool="battery")
    def service_op(context: dg.OpExecutionContext, config: ServiceConfig, sites: SitesResource,
                   history: HistoryStoreResource, fleet: BatteryFleetResource) -> dict:
        from ..devices.services import ServiceInputError, run_service

        site = _site_with_endpoint(sites.load().get(config.site_id), fleet)
        params = {k: v for k, v in config.model_dump().items() if k != "site_id" and v is not None}
        if "watts" in config.model_fields_set and config.watts is None:
            params["watts"] = None
        try:
            result = run_service(name, site, params, history.store())
        except ServiceInputError as exc:
            raise dg.Failure(description=str(exc)) from None
        meta = {k: dg.MetadataValue.text(str(result.get(k))) for k in ("outcome", "error", "command_id") if k in result}
        if "written" in result:
            meta["written"] = dg.MetadataValue.json(result["written"])
            meta["readback"] = dg.MetadataValue.json(result["readback"])
        context.add_output_metadata(meta)
        if not result.get("ok"):
            raise dg.Failure(description=f"{name} on {site.id}: {result.get('outcome', 'failed')}: {result.get('error')}",
                             metadata=meta)
        return result

    @dg.job(name=f"service_{name}", executor_def=dg.in_process_executor, description=description,
            tags={"powersync/service": name})
    def service_job() -> None:
        service_op()

    return service_job


for _name, _help in SERVICES.items():
    globals()[f"service_{_name}_job"] = _service_job(_name, _help)


# -- the restore watch ---------------------------------------------------------------------------------------
class RestoreConfig(dg.Config):
    site_id: str | None = None  # None = every site with an expired forced mode


@dg.op(description="Restore every battery whose forced mode has expired (the saved state is written back and "
       "read back); a failed restore stays pending and is retried on the next tick.", pool="battery")
def restore_expired_op(context: dg.OpExecutionContext, config: RestoreConfig, sites: SitesResource,
                       history: HistoryStoreResource, fleet: BatteryFleetResource) -> None:
    from ..devices.base import restore_expired
    from ..devices.state import pending_expired

    store = history.store()
    loaded = sites.load()
    due = [s for s in pending_expired(store, pd.Timestamp.now(tz="UTC"))
           if s.slot == "forced" and (config.site_id is None or s.site_id == config.site_id)]
    failures = []
    for saved in due:
        try:
            site = _site_with_endpoint(loaded.get(saved.site_id), fleet)
        except ValueError as exc:
            failures.append(f"{saved.site_id}: {exc}")
            continue
        result = restore_expired(store, site)
        context.log.info(f"{saved.site_id}: restore after {saved.reason}: "
                         f"{result.outcome if result else 'nothing due'}")
        if result is not None and not result.ok:
            failures.append(f"{saved.site_id}: {result.error}")
    if failures:
        raise dg.Failure(description="restore failed: " + "; ".join(failures))


@dg.job(executor_def=dg.in_process_executor, tags={"powersync/service": "restore_expired"},
        description="Put back the saved state of every battery whose forced mode has expired.")
def battery_restore_expired_job() -> None:
    restore_expired_op()


@dg.sensor(job=battery_restore_expired_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Every 30 s: is a forced mode past its expiry (or left behind by a crash)? Then restore it.")
def battery_restore_watch(context: dg.SensorEvaluationContext, history: HistoryStoreResource) -> Any:
    from ..devices.state import pending_expired

    due = [s for s in pending_expired(history.store(), pd.Timestamp.now(tz="UTC")) if s.slot == "forced"]
    if not due:
        return dg.SkipReason("no expired forced mode")
    return [dg.RunRequest(run_key=f"restore:{s.site_id}:{s.saved_at.isoformat()}:{s.attempts}",
                          run_config={"ops": {"restore_expired_op": {"config": {"site_id": s.site_id}}}})
            for s in due]
