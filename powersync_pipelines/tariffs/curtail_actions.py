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
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..config import SiteConfig
from ..storage import HistoryStore
from .curtailment import CurtailState, current_export_price, next_state
from .settings import tariff_features

DC_KINDS = ("tesla", "sigenergy", "sungrow_sh")
BatteryOpener = Callable[[], AbstractContextManager[Any]]


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


def _dc(site: SiteConfig, curtail: bool, open_battery: BatteryOpener) -> dict[str, Any]:
    try:
        with open_battery() as device:
            res = device.curtail() if curtail else device.restore_curtailment()
        return {"outcome": res.outcome, "error": res.error, "command_id": res.command_id}
    except Exception as exc:  # an unreachable battery is an outcome to record and retry, not a crash
        return {"outcome": "error", "error": f"{type(exc).__name__}: {exc}", "command_id": None}


def _ac(site: SiteConfig, store: HistoryStore, curtail: bool, inverter: Any) -> dict[str, Any]:
    from ..devices.inverters.control import curtail_inverter, restore_inverter

    res = curtail_inverter(site, store, inverter) if curtail else restore_inverter(site, store, inverter)
    return {"outcome": res.outcome, "error": res.error, "command_id": res.command_id, "brand": res.brand}


def evaluate_curtailment(site: SiteConfig, store: HistoryStore, prices: pd.DataFrame, now: pd.Timestamp,
                         open_battery: BatteryOpener | None = None, inverter: Any = None,
                         act: bool = True) -> CurtailmentRun:
    """One evaluation: step the rule with the current export price, act on a change (or retry), persist."""
    cfg = tariff_features(site).curtailment
    now = pd.Timestamp(now).tz_convert("UTC")
    state, applied = load_state(store, site.id)
    price = current_export_price(prices, now)
    step = next_state(state, price, now, cfg)
    need = step.changed or not applied
    run = CurtailmentRun(site.id, now, price, step.state.curtailed, step.changed, False, applied, step.reason)
    if need and act:
        run.acted, ok = True, True
        if cfg.dc and site.battery.kind in DC_KINDS and site.solar is not None and open_battery is not None:
            run.dc = _dc(site, run.curtailed, open_battery)
            ok = ok and run.dc["outcome"] == "ok"
        if cfg.ac and site.ac_inverter is not None:
            run.ac = _ac(site, store, run.curtailed, inverter)
            ok = ok and run.ac["outcome"] == "ok"
        run.applied = ok
        if not step.changed:
            run.reason = f"retrying: devices were not confirmed {'curtailed' if run.curtailed else 'restored'}; {step.reason}"
    elif need:
        run.applied = False
    _save(store, run, step.state.since)
    return run
