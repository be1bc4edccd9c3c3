"""The EV charger under the arbiter: the planning cycle's EV step (owner ``ev``) and a person's commands
(``manual``), both as requests for the site's ``ev_charger`` control.

The EV step runs after the battery step of every planning cycle for a site with an ``ev:`` section. It plans the
car on the same forecasts and the battery's plan (``ev.cycle.ev_cycle``) and sends the charger its current as
owner ``ev``, leased until just past the next cycle so a stopped pipeline lets the hold lapse. A person's start
or stop holds the charger as ``manual`` for its duration: the EV step's requests are yielded (and recorded)
until that lease ends. The sharing hysteresis (the last current sent, how long the charger has been paused) is
stored per site and charger (``ev_sharing_state``), so a restarted planner carries on without flapping.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd

from ..config import SiteConfig, SitesFile
from ..demand import site_demand_charge
from ..devices.base import CommandResult
from ..ev.cycle import SiteTelemetry, charge_at, ev_cycle
from ..ev.handoff import Setpoint, request_setpoint
from ..ev.state import load_sharing_state, save_sharing_state
from ..optimizer import PlannerSettings, ScheduleResult
from ..owners import Owner
from ..storage import HistoryStore
from ..timegrid import STEP
from . import ledger
from .arbiter import Arbiter, Outcome, Request
from .context import ControlContext

# The house load measured at most this long ago stands for the first interval; older, the forecast does.
TELEMETRY_FRESH = pd.Timedelta(minutes=10)
# The EV step's hold outlives the cycle by this much, so the next 5-minute cycle renews it before it lapses.
EV_GRACE = pd.Timedelta(minutes=5)


def charger_request(site: SiteConfig, owner: Owner, command: str, reason: str, lease_until: pd.Timestamp | None,
                    releases: bool = False) -> Request:
    kind = site.ev.charger if site.ev is not None else "charger"
    return Request(site.id, "ev_charger", owner, command, reason, lease_until=lease_until, releases=releases,
                   device_kind=f"ev_{kind}")


def latest_telemetry(ctx: ControlContext, site: SiteConfig) -> SiteTelemetry | None:
    """The site's last stored measurement if it is at most ``TELEMETRY_FRESH`` old (wall clock) and usable."""
    df = ctx.store.query("SELECT ts, load_kw, solar_kw FROM telemetry WHERE site_id = ? AND load_kw IS NOT NULL "
                         "ORDER BY ts DESC LIMIT 1", [site.id])
    if df.empty:
        return None
    r = df.iloc[0]
    if ctx.clock.wall() - pd.Timestamp(r["ts"]).tz_convert("UTC") > TELEMETRY_FRESH:
        return None
    load, solar = float(r["load_kw"]), r["solar_kw"]
    solar = None if solar is None or pd.isna(solar) or float(solar) < 0 else float(solar)
    if not math.isfinite(load) or load < 0:
        return None
    return SiteTelemetry(load, solar)


def ev_step(ctx: ControlContext, site: SiteConfig, now: pd.Timestamp, prices: pd.DataFrame, solar: pd.Series,
            load: pd.Series, soc: float, base: ScheduleResult | None = None) -> dict[str, Any]:
    """Plan the site's car on this cycle's inputs and send the charger its current through the arbiter as ``ev``.

    Returns ``ev_cycle``'s JSON (session, plan, amps, the arbiter's decision). A charger that cannot be read is
    reported in ``error``; the battery's cycle is not failed by it.
    """
    imp = prices["import_price"].to_numpy(dtype=float)
    demand = site_demand_charge(ctx.store, site, now, pd.date_range(now, periods=len(imp), freq=STEP))
    problem = PlannerSettings.from_site(site).problem(
        now, imp, prices["export_price"].to_numpy(dtype=float), solar.to_numpy(dtype=float),
        load.to_numpy(dtype=float), soc, demand_charge=demand)
    lease = max(now + STEP, ctx.clock.wall() + STEP) + EV_GRACE
    state = load_sharing_state(ctx.store, site.id, site.ev, ctx.clock.wall())

    with ctx.charger(site) as charger:
        def send(command: str, write: Any) -> Outcome:
            return ctx.arbiter.act(charger_request(site, "ev", command, f"ev plan at {now.isoformat()}", lease), write)

        try:
            res = ev_cycle(site, problem, charger, ctx.store, now, telemetry=latest_telemetry(ctx, site), state=state,
                           base=base, send=send)
        except Exception as exc:  # an unreachable charger: the battery's cycle still counts
            return {"site_id": site.id, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
    if res.decision is not None and res.command is not None and res.command.ok:
        save_sharing_state(ctx.store, site.id, site.ev, res.decision.state, res.decision.reason, ctx.clock.wall())
    out = res.to_dict()
    out["ok"] = res.command is None or bool(res.command.ok) or bool(getattr(res.command, "yielded", False))
    return out


def manual_command(ctx: ControlContext, site: SiteConfig, command: str, minutes: int, amps: float | None = None,
                   owner: Owner = "manual") -> Outcome:
    """A person's ``start`` or ``stop`` of the site's charger, held for ``minutes`` against the EV plan."""
    lease = ctx.clock.wall() + pd.Timedelta(minutes=int(minutes))
    reason = f"{command} for {int(minutes)} min"
    with ctx.charger(site) as charger:
        def write() -> CommandResult:
            if command == "stop":
                return charger.stop()
            return charge_at(charger, charger.read_status(), charger.cfg.max_amps if amps is None else amps)

        return ctx.arbiter.act(charger_request(site, owner, command, reason, lease), write)


def arbitrated_resend(store: HistoryStore, sites: SitesFile) -> Callable[[str, Setpoint], tuple[bool, str]]:
    """The OCPP central system's re-send of a rebooted charge point's last limit, as a request to the arbiter.

    The limit is re-sent only for the owner that still holds the site's ``ev_charger`` control, under that hold's
    own lease (a re-send never extends it): a lapsed lease, or another owner holding the charger, refuses it and
    the charger waits for whoever holds it now (the next cycle, or the person's command).
    """
    arbiter = Arbiter(store)

    def resend(site_id: str, last: Setpoint) -> tuple[bool, str]:
        site = sites.get(site_id)
        owner = last.requested_by
        hold = ledger.holder(store, site_id, "ev_charger", arbiter.now())
        if hold is None:
            return False, f"refused: {owner}'s hold of the charger lapsed"
        if hold.owner != owner:
            return False, f"refused: {hold.owner} holds the charger, not {owner}"
        value, unit = float(last.limit_value or 0.0), last.unit or "A"

        def write() -> CommandResult:
            sid = request_setpoint(store, site_id, last.charge_point_id, value, unit, connector_id=last.connector_id,
                                   requested_by=owner)
            return CommandResult("resend_limit", {"limit": value, "unit": unit}, {"setpoint_id": sid}, {}, ok=True)

        reason = f"re-send {value:g} {unit} after the charge point rebooted"
        out = arbiter.act(charger_request(site, owner, "resend_limit", reason, hold.lease_until), write)
        return out.ok, out.describe()

    return resend
