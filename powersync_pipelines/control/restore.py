"""The restore watch's work: put back what a lapsed hold left behind, and retry restores that failed.

A hold whose lease ran out (a manual force of 60 minutes, a spike response whose watch died, the optimizer's
slot when the pipeline stopped) is ended as ``lapsed`` and, where the driver saved a state before its first
write, that state is written back and read back, on behalf of ``safety``. A restore that failed stays pending in
the driver's saved state (``restore_failed``) and is retried on every pass while nobody else holds the control.
The restore never overrides a live holder (``preempt=False``): if someone took the control since, it yields.
"""

from __future__ import annotations

import pandas as pd

from ..config import SiteConfig
from ..devices import state
from ..devices.inverters.control import SLOT as INVERTER_SLOT
from ..devices.inverters.control import restore_inverter
from . import ledger
from .arbiter import Outcome, Request
from .context import ControlContext

# The driver's saved-state slot behind each leased control (``devices.state``).
SAVED_SLOTS = {"battery": "forced", "battery_export": "curtail", "inverter": INVERTER_SLOT}


def settle(ctx: ControlContext, site: SiteConfig, now: pd.Timestamp | None = None) -> list[Outcome]:
    """End the site's lapsed holds and restore what they left; retry failed restores. Returns the restores run."""
    now = now if now is not None else ctx.clock.wall()
    outcomes: list[Outcome] = []
    tried: set[str] = set()
    for hold in ledger.lapsed(ctx.store, now, site.id):
        ledger.end(ctx.store, hold, "lapsed", f"lease ended at {hold.lease_until.isoformat()}", now)
        out = restore(ctx, site, hold.control, f"the lease of {hold.describe()} ended")
        if out is not None:
            outcomes.append(out)
            tried.add(hold.control)
    for control, slot in SAVED_SLOTS.items():
        saved = state.load(ctx.store, site.id, slot)
        if saved is None or saved.status != "restore_failed" or control in tried:
            continue
        holder = ledger.holder(ctx.store, site.id, control, now)
        if holder is None or holder.owner == "safety":
            out = restore(ctx, site, control, f"retrying a restore that failed: {saved.last_error}")
            if out is not None:
                outcomes.append(out)
    return outcomes


def restore(ctx: ControlContext, site: SiteConfig, control: str, reason: str) -> Outcome | None:
    """Write back the state saved behind ``control`` as ``safety`` (None when nothing is pending)."""
    slot = SAVED_SLOTS.get(control)
    if slot is None or state.load_pending(ctx.store, site.id, slot) is None:
        return None
    if control == "inverter":
        req = Request(site.id, "inverter", "safety", "restore_inverter", reason, releases=True, preempt=False,
                      device_kind=f"ac_inverter:{site.ac_inverter.brand}" if site.ac_inverter else "ac_inverter")
        with ctx.inverter(site) as inv:
            return ctx.arbiter.act(req, lambda: restore_inverter(site, ctx.store, inv))
    command = "restore_normal" if control == "battery" else "restore_curtailment"
    req = Request(site.id, control, "safety", command, reason, releases=True, preempt=False,  # type: ignore[arg-type]
                  device_kind=site.battery.kind)
    with ctx.battery(site) as device:
        return ctx.arbiter.act(req, device.restore_normal if control == "battery" else device.restore_curtailment)


def due(ctx: ControlContext, now: pd.Timestamp | None = None) -> list[str]:
    """Site ids with something for the restore watch to do (a lapsed hold, or a failed restore to retry)."""
    now = now if now is not None else ctx.clock.wall()
    sites = {h.site_id for h in ledger.lapsed(ctx.store, now)}
    failed = ctx.store.query("SELECT DISTINCT site_id FROM device_saved_state WHERE status = 'restore_failed'")
    sites |= set(failed["site_id"])
    return sorted(sites)
