"""One EV planning cycle: from the charger's state and the site's plan inputs to the current it is told.

``ev_cycle`` is what the planning cycle (``control``) calls every 5 minutes for a site with a charger:

1. the site's settings (``ev_site_settings`` over ``ev.default_session``) and the charger's status;
2. no car: nothing is planned or sent;
3. a car: the session (plugged in at the transaction's start, departure the next local HH:MM after it, or after
   now once it has passed; the target minus what the charger has delivered so far) is planned in its mode on
   the battery-only problem (``modes.plan_session``);
4. the power the plan wants now (``time_critical``: as much as possible; the solar modes: the measured surplus
   when measurements are given) is shared with the house and the battery within the connection limit
   (``sharing.share``: the house as measured now, without the car's own draw, when telemetry is fresh; the
   forecast's first interval otherwise), and the charger is told the resulting whole amps. The sharing state
   (hysteresis) comes from the caller; with none, from the charger's own limit.

Every write goes through ``send(command, write)``: the control layer (``control.ev``) passes one that asks the
arbiter for the ``ev_charger`` control, so a person's command or a safety hold is never overridden; without it
the write runs directly (a tool or a test driving an unarbitrated charger).
"""

from __future__ import annotations

import math
from collections.abc import Callable
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


@dataclass(frozen=True)
class SiteTelemetry:
    """The site's latest measurement (kW, non-negative): its house load includes whatever the car drew then."""

    load_kw: float
    solar_kw: float | None = None  # None: not measured, the forecast's is used


def first_interval_readings(problem: OptimizationProblem, status: ChargerStatus, battery_charge_kw: float,
                            telemetry: SiteTelemetry | None) -> tuple[SiteReadings, str]:
    """The powers the car shares the connection with now, and where they came from (``telemetry`` | ``forecast``).

    The measured house load contains the car's own draw, so the charger's measured power is taken off it (a
    charger that reports no power leaves the load as measured: less room, never more); the battery's charging
    is the plan's for this interval, the one it was just told.
    """
    if telemetry is None:
        return SiteReadings(float(problem.load_kw[0]), float(problem.solar_kw[0]), battery_charge_kw), "forecast"
    car_kw = status.power_kw if status.power_kw is not None and math.isfinite(status.power_kw) else 0.0
    solar = telemetry.solar_kw if telemetry.solar_kw is not None else float(problem.solar_kw[0])
    return SiteReadings(max(0.0, telemetry.load_kw - max(0.0, car_kw)), solar, battery_charge_kw), "telemetry"


@dataclass
class EvCycleResult:
    site_id: str
    status: ChargerStatus | None
    settings: EvSettings
    session: EvSession | None = None
    plan: EvPlan | None = None
    decision: SharingDecision | None = None
    command: Any = None  # what ``send`` returned: the driver's CommandResult, or the arbiter's Outcome
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
            "command": self._command_dict(),
            "readings": self.extras.get("readings"),
        }

    def _command_dict(self) -> dict[str, Any] | None:
        c = self.command
        if c is None:
            return None
        if hasattr(c, "as_dict"):  # the arbiter's Outcome: its decision, the holder it yielded to, the driver's error
            d = c.as_dict()
            return {"ok": d["ok"], "outcome": d["outcome"], "error": d["error"], "arbiter": d}
        return {"ok": c.ok, "outcome": c.outcome, "error": c.error}


def _plugged_in(store: HistoryStore | None, site: SiteConfig, status: ChargerStatus, now: pd.Timestamp) -> pd.Timestamp:
    tx = status.raw.get("transaction_id") if isinstance(status.raw, dict) else None
    if store is not None and tx is not None:
        df = store.query("SELECT started_at FROM ocpp_transactions WHERE transaction_id = ?", [int(tx)])
        if len(df):
            return pd.Timestamp(df.iloc[0, 0]).tz_convert("UTC")
    return now


def _running(status: ChargerStatus) -> bool:
    """A charge or an OCPP transaction is under way (a limit alone starts nothing on an OCPP charge point)."""
    tx = status.raw.get("transaction_id") if isinstance(status.raw, dict) else None
    return status.charging or tx is not None or "transaction_id" not in (status.raw or {})


def charge_at(charger: Charger, status: ChargerStatus, amps: float) -> CommandResult:
    """Set the limit to ``amps``, first starting a transaction where the car waits without one (OCPP
    ``Preparing``) and ``amps`` would charge it."""
    if amps > 0 and status.car_connected and not _running(status):
        started = charger.start()
        if not started.ok:
            return started
    return charger.set_current_limit(amps)


def ev_cycle(site: SiteConfig, problem: OptimizationProblem, charger: Charger, store: HistoryStore, now: pd.Timestamp,
             *, readings: SiteReadings | None = None, telemetry: SiteTelemetry | None = None,
             state: SharingState | None = None,
             base: ScheduleResult | None = None, mode: str | None = None,
             send: Callable[[str, Callable[[], CommandResult]], Any] | None = None) -> EvCycleResult:
    """Plan the site's car for this cycle and send the charger its current (see the module docstring).

    ``problem`` is the battery-only problem starting at the current interval; ``readings`` the site's powers
    without the car, or ``telemetry`` its fresh measurement (the car's measured draw is taken off the house
    load), else the forecast's first interval; ``state`` the last cycle's sharing state (hysteresis); ``mode``
    overrides the stored one for this cycle; ``send`` carries each write (default: straight to the charger).
    """
    go = send if send is not None else (lambda _name, write: write())
    cfg = site.ev
    if cfg is None:
        raise ValueError(f"site {site.id!r} has no ev: section")
    settings = load_settings(store, site.id, cfg)
    status = charger.read_status()
    res = EvCycleResult(site.id, status, settings)
    if state is None:  # nothing remembered: the charger's own limit is what it was last told
        charging = status.charging and status.current_limit_a is not None and status.current_limit_a > 0
        state = SharingState(int(status.current_limit_a), 0) if charging else SharingState()
    if not status.car_connected:
        res.note = "no car connected"
        return res
    plugged = min(_plugged_in(store, site, status, now), now)  # a replayed clock runs behind the charger's
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
        res.decision = share(session.limits, 0.0, problem.import_limit_kw, 0.0, 0.0, 0.0, state)
        res.command = go("set_current_limit", lambda: charger.set_current_limit(0))
        return res
    plan = plan_session(problem, session, base=base)
    res.plan = plan
    battery_kw = float(plan.schedule.intervals["battery_charge_kw"].iloc[0]) if plan.schedule is not None else 0.0
    if readings is not None:
        r, source = readings, "given"
    else:
        r, source = first_interval_readings(problem, status, battery_kw, telemetry)
    res.extras["readings"] = {"source": source, "load_kw": round(r.load_kw, 4), "solar_kw": round(r.solar_kw, 4),
                              "battery_charge_kw": round(r.battery_charge_kw, 4)}
    measured = readings is not None or telemetry is not None
    if session.mode == "time_critical" or not plan.feasible:
        requested = math.inf
    elif session.mode in ("solar_only", "solar_preferred") and measured:
        surplus = max(0.0, r.solar_kw - r.load_kw - r.battery_charge_kw)
        grid_part = max(0.0, plan.ev_kw[0] - max(0.0, problem.solar_kw[0] - problem.load_kw[0]))
        requested = surplus + (grid_part if session.mode == "solar_preferred" else 0.0)
    else:
        requested = float(plan.ev_kw[0])
    decision = share(session.limits, requested, problem.import_limit_kw, r.load_kw, r.solar_kw, r.battery_charge_kw,
                     state)
    res.decision = decision
    res.command = go("set_current_limit", lambda: charge_at(charger, status, decision.amps))
    res.note = decision.reason
    return res
