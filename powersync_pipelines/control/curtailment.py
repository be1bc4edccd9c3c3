"""Run the curtailment rule for a site and bring its devices into the decided state.

DC (the battery system's own export control, SPEC §8): Tesla export rule ``never`` ↔ the saved rule
(``battery_ok``), Sigenergy export limit 0 ↔ the saved limit, Sungrow SH export limit 0 + switch ↔ saved
values. These are the battery drivers' ``curtail()`` / ``restore_curtailment()``, which save state durably.
AC: the site's AC-coupled inverter (``devices.inverters.control``).

The rule's state lives in DuckDB (``curtailment_state``) so hold time and hysteresis survive restarts, and
``applied`` remembers whether the devices confirmed the decision: a failed action is retried on the next
evaluation instead of being forgotten.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..config import SiteConfig
from ..devices.inverters.control import curtail_inverter, restore_inverter
from ..storage import HistoryStore
from ..tariffs.curtailment import CurtailState, current_export_price, next_state
from .arbiter import Outcome, Request
from .context import ControlContext

DC_KINDS = ("tesla", "sigenergy", "sungrow_sh")


@dataclass
class CurtailmentRun:
    site_id: str
    now: pd.Timestamp
    export_price: float | None
    curtailed: bool
    changed: bool
    acted: bool
    applied: bool
    reason: str
    dc: dict[str, Any] | None = None
    ac: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in self.__dict__.items()}


def load_state(store: HistoryStore, site_id: str) -> tuple[CurtailState, bool]:
    rows = store.query("SELECT curtailed, since, applied FROM curtailment_state WHERE site_id = ?", [site_id])
    if rows.empty:
        return CurtailState(), True
    r = rows.iloc[0]
    since = pd.Timestamp(r["since"]).tz_convert("UTC") if pd.notna(r["since"]) else None
    return CurtailState(bool(r["curtailed"]), since), bool(r["applied"])


def _save(store: HistoryStore, run: CurtailmentRun, since: pd.Timestamp | None) -> None:
    row = pd.DataFrame([{"site_id": run.site_id, "curtailed": run.curtailed, "since": since, "applied": run.applied,
                         "export_price": run.export_price, "reason": run.reason, "updated_at": run.now}])
    store.upsert("curtailment_state", row, ["site_id"])
    if run.acted:
        event = pd.DataFrame([{
            "site_id": run.site_id, "ts": run.now, "curtailed": run.curtailed, "export_price": run.export_price,
            "reason": run.reason, "dc_outcome": (run.dc or {}).get("outcome", "skipped"),
            "ac_outcome": (run.ac or {}).get("outcome", "skipped"),
            "detail": json.dumps({"dc": run.dc, "ac": run.ac}, default=str),
        }])
        store.upsert("curtailment_events", event, ["site_id", "ts"])


def _summary(out: Outcome, **extra: Any) -> dict[str, Any]:
    return {"outcome": out.outcome, "error": out.as_dict()["error"], "command_id": out.command_id,
            "decision": out.decision, **extra}


def _dc(ctx: ControlContext, site: SiteConfig, curtail: bool, reason: str) -> dict[str, Any]:
    req = Request(site.id, "battery_export", "curtailment", "curtail" if curtail else "restore_curtailment", reason,
                  releases=not curtail, device_kind=site.battery.kind)
    with ctx.battery(site) as device:
        return _summary(ctx.arbiter.act(req, device.curtail if curtail else device.restore_curtailment))


def _ac(ctx: ControlContext, site: SiteConfig, curtail: bool, reason: str) -> dict[str, Any]:
    assert site.ac_inverter is not None
    brand = site.ac_inverter.brand
    req = Request(site.id, "inverter", "curtailment", "curtail_inverter" if curtail else "restore_inverter", reason,
                  releases=not curtail, device_kind=f"ac_inverter:{brand}")
    fn = curtail_inverter if curtail else restore_inverter
    with ctx.inverter(site) as inv:
        return _summary(ctx.arbiter.act(req, lambda: fn(site, ctx.store, inv)), brand=brand)


def evaluate_curtailment(ctx: ControlContext, site: SiteConfig, prices: pd.DataFrame, now: pd.Timestamp,
                         act: bool = True) -> CurtailmentRun:
    """One evaluation: step the rule with the current export price, act on a change (or retry), persist.

    The devices are asked through the arbiter as ``curtailment``: a manual curtail/restore or a higher owner
    holding the export control wins, and the rule's decision stays unapplied (retried on the next evaluation).
    """
    cfg = site.features.curtailment
    store = ctx.store
    now = pd.Timestamp(now).tz_convert("UTC")
    state, applied = load_state(store, site.id)
    price = current_export_price(prices, now)
    step = next_state(state, price, now, cfg)
    need = step.changed or not applied
    run = CurtailmentRun(site.id, now, price, step.state.curtailed, step.changed, False, applied, step.reason)
    if need and act:
        run.acted, ok = True, True
        if cfg.dc and site.battery.kind in DC_KINDS and site.solar is not None:
            run.dc = _dc(ctx, site, run.curtailed, step.reason)
            ok = ok and run.dc["outcome"] == "ok"
        if cfg.ac and site.ac_inverter is not None:
            run.ac = _ac(ctx, site, run.curtailed, step.reason)
            ok = ok and run.ac["outcome"] == "ok"
        run.applied = ok
        if not step.changed:
            run.reason = f"retrying: devices were not confirmed {'curtailed' if run.curtailed else 'restored'}; {step.reason}"
    elif need:
        run.applied = False
    _save(store, run, step.state.since)
    return run
