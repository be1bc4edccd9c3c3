"""One EV planning cycle: from the charger's state and the site's plan inputs to the current it is told.

``ev_cycle`` is what the planning cycle (``control``) calls every 5 minutes for a site with a charger:

1. the site's settings (``ev_site_settings`` over ``ev.default_session``) and the charger's status;
2. no car: nothing is planned or sent;
3. a car: the session (plugged in at the transaction's start, departure the next local HH:MM after it, or after
   now once it has passed; the target minus what the charger has delivered so far) is planned in its mode on
   the battery-only problem (``modes.plan_session``);
4. the power the plan wants now (``time_critical``: as much as possible; the solar modes: the measured surplus
   when measurements are given) is shared with the house and the battery within the connection limit
   (``sharing.share``), and the charger is told the resulting whole amps.

It writes only through the charger interface; the arbiter (who may write to the charger now) sits above it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..config import SiteConfig
from ..devices.base import CommandResult
from ..optimizer import OptimizationProblem, ScheduleResult
from ..storage import HistoryStore
from .chargers.base import Charger, ChargerStatus
from .modes import EvPlan, plan_session
from .session import EvSession, next_local_time
from .sharing import SharingDecision, SharingState, share
from .state import EvSettings, load_settings


@dataclass(frozen=True)
class SiteReadings:
    """The site's measured powers without the car (kW, non-negative)."""

    load_kw: float
    solar_kw: float
    battery_charge_kw: float


@dataclass
class EvCycleResult:
    site_id: str
    status: ChargerStatus | None
    settings: EvSettings
    session: EvSession | None = None
    plan: EvPlan | None = None
    decision: SharingDecision | None = None
    command: CommandResult | None = None
    note: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "site_id": self.site_id, "note": self.note, "settings": self.settings.as_dict(),
            "charger": None if self.status is None else self.status.as_dict(),
            "session": None if self.session is None else {
                "plugged_in": self.session.plugged_in.isoformat(), "departure": self.session.departure.isoformat(),
                "energy_kwh": round(self.session.energy_kwh, 4), "mode": self.session.mode},
            "plan": None if self.plan is None else self.plan.to_dict(),
            "amps": None if self.decision is None else self.decision.amps,
            "sharing": None if self.decision is None else self.decision.reason,
            "command": None if self.command is None else {"ok": self.command.ok, "outcome": self.command.outcome,
                                                          "error": self.command.error},
        }


def _plugged_in(store: HistoryStore | None, site: SiteConfig, status: ChargerStatus, now: pd.Timestamp) -> pd.Timestamp:
    tx = status.raw.get("transaction_id") if isinstance(status.raw, dict) else None
    if store is not None and tx is not None:
        df = store.query("SELECT started_at FROM ocpp_transactions WHERE transaction_id = ?", [int(tx)])
        if len(df):
            return pd.Timestamp(df.iloc[0, 0]).tz_convert("UTC")
    return now


def ev_cycle(site: SiteConfig, problem: OptimizationProblem, charger: Charger, store: HistoryStore, now: pd.Timestamp,
             *, readings: SiteReadings | None = None, state: SharingState | None = None,
             base: ScheduleResult | None = None, mode: str | None = None) -> EvCycleResult:
    """Plan the site's car for this cycle and send the charger its current (see the module docstring).

    ``problem`` is the battery-only problem starting at the current interval; ``state`` the last cycle's
    sharing state (hysteresis); ``mode`` overrides the stored one for this cycle.
    """
    cfg = site.ev
    if cfg is None:
        raise ValueError(f"site {site.id!r} has no ev: section")
    settings = load_settings(store, site.id, cfg)
    status = charger.read_status()
    res = EvCycleResult(site.id, status, settings)
    if not status.car_connected:
        res.note = "no car connected"
        return res
    plugged = _plugged_in(store, site, status, now)
    departure = settings.departure or "07:30"
    dep = next_local_time(departure, plugged, site.timezone)
    if dep <= now:
        dep = next_local_time(departure, now, site.timezone)
    target = settings.target_kwh if settings.target_kwh is not None else 0.0
    session = EvSession.from_config(cfg, plugged, site.timezone, departure=dep, target_kwh=target,
                                    mode=mode or settings.mode)
    delivered_ac = status.session_energy_kwh or 0.0
    session = session.delivered(delivered_ac * session.efficiency)
    res.session = session
    if session.energy_kwh <= 1e-3:
        res.note = "target reached"
        res.decision = share(session.limits, 0.0, problem.import_limit_kw, 0.0, 0.0, 0.0, state or SharingState())
        res.command = charger.set_current_limit(0)
        return res
    plan = plan_session(problem, session, base=base)
    res.plan = plan
    r = readings or SiteReadings(float(problem.load_kw[0]), float(problem.solar_kw[0]),
                                 float(plan.schedule.intervals["battery_charge_kw"].iloc[0]) if plan.schedule is not None
                                 else 0.0)
    if session.mode == "time_critical" or not plan.feasible:
        requested = math.inf
    elif session.mode in ("solar_only", "solar_preferred") and readings is not None:
        surplus = max(0.0, r.solar_kw - r.load_kw - r.battery_charge_kw)
        grid_part = max(0.0, plan.ev_kw[0] - max(0.0, problem.solar_kw[0] - problem.load_kw[0]))
        requested = surplus + (grid_part if session.mode == "solar_preferred" else 0.0)
    else:
        requested = float(plan.ev_kw[0])
    decision = share(session.limits, requested, problem.import_limit_kw, r.load_kw, r.solar_kw, r.battery_charge_kw,
                     state or SharingState())
    res.decision = decision
    res.command = charger.set_current_limit(decision.amps)
    res.note = decision.reason
    return res
