"""The arbiter: the one choke point every write to a battery, inverter or EV charger passes.

A caller (the planning cycle, a service, the spike watch, an automation, curtailment, the EV plan) describes what
it wants as a :class:`Request` (site, control, owner, command, lease) and hands the arbiter the write itself as a
function. The arbiter asks the ledger (``control.ledger``): if a higher owner holds the control, the request is
*yielded* and recorded with the holder's name and lease end, and nothing is written. Otherwise the hold is
written durably *before* the device is touched, the write runs under a grant the driver checks
(``devices.grants``: an arbitrated driver refuses writes without one), and its outcome settles the hold:

* ok: the hold stays for its lease; a command that gives the control back (``restore_normal``) or a setting
  written once (``instant``) ends it as ``released``;
* refused by the driver's safety rules (stale telemetry, the reserve floor, a bad value): nothing was written,
  the hold ends as ``failed`` and the request is recorded as ``refused``;
* a write that failed part-way: the driver has put the battery back into its saved state, and ``safety`` holds
  the control for :data:`SAFETY_HOLD` so that nobody hammers a device that just failed; the restore watch lets it
  lapse. A failed *restore* leaves no such hold: it is retried (by its owner and by the restore watch) until it
  holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from ..devices.grants import Grant, granted
from ..owners import Control, Owner, check_control, check_owner
from ..storage import HistoryStore
from . import ledger
from .clock import wall_clock
from .ledger import Hold

SAFETY_HOLD = pd.Timedelta(minutes=5)


class CommandOutcome(Protocol):
    """What every driver command returns (``devices.base.CommandResult`` and the inverter/EV results)."""

    ok: bool
    outcome: str
    error: str | None
    command_id: str | None
    written: Any


@dataclass(frozen=True)
class Request:
    """One owner's request to command one control of one site."""

    site_id: str
    control: Control
    owner: Owner
    command: str
    reason: str
    lease_until: pd.Timestamp | None = None  # None: held until released
    releases: bool = False  # the command gives the control back (restore_normal, restore_curtailment)
    instant: bool = False  # a setting written once: held only while it is written
    preempt: bool = True  # False: yield to any holder (the restore watch never overrides a live owner)
    device_kind: str = ""  # for the ``commands`` record of a write that failed before the driver could record it

    def __post_init__(self) -> None:
        check_owner(self.owner)
        check_control(self.control)


@dataclass
class Outcome:
    """The arbiter's decision and, when granted, what the write did."""

    request: Request
    decision: str  # granted | yielded | refused | error
    holder: Hold | None = None  # who held the control when the request arrived
    result: Any = None  # the driver's result (CommandOutcome) when the write ran
    error: str | None = None
    safety_hold: Hold | None = None

    @property
    def ok(self) -> bool:
        return self.decision == "granted" and self.result is not None and bool(self.result.ok)

    @property
    def yielded(self) -> bool:
        return self.decision == "yielded"

    @property
    def outcome(self) -> str:
        """``ok``, ``yielded`` or the driver's outcome (``refused``, ``verify_failed``, ``error``)."""
        if self.decision == "yielded":
            return "yielded"
        if self.result is None:
            return "error"
        return str(self.result.outcome)

    @property
    def command_id(self) -> str | None:
        return getattr(self.result, "command_id", None) if self.result is not None else None

    def describe(self) -> str:
        r = self.request
        if self.decision == "yielded" and self.holder is not None:
            return f"{r.owner} {r.command}: yielded to {self.holder.describe()}"
        if self.result is None:
            return f"{r.owner} {r.command}: error: {self.error}"
        text = f"{r.owner} {r.command}: {self.result.outcome}"
        if self.result.error:
            text += f": {self.result.error}"
        if self.safety_hold is not None:
            text += f" (safety holds {r.control} until {self.safety_hold.lease_until:%H:%M:%S}Z)"
        return text

    def as_dict(self) -> dict[str, Any]:
        h = self.holder
        return {"owner": self.request.owner, "control": self.request.control, "command": self.request.command,
                "decision": self.decision, "outcome": self.outcome, "ok": self.ok,
                "holder": h.owner if h is not None else None,
                "holder_until": h.lease_until.isoformat() if h is not None and h.lease_until is not None else None,
                "error": self.error or (getattr(self.result, "error", None) if self.result is not None else None),
                "command_id": self.command_id, "summary": self.describe()}


class Arbiter:
    """Applies the owners' priority to every device write (see the module docstring)."""

    def __init__(self, store: HistoryStore, now: Callable[[], pd.Timestamp] = wall_clock) -> None:
        self.store = store
        self.now = now

    def holder(self, site_id: str, control: Control = "battery") -> Hold | None:
        return ledger.holder(self.store, site_id, control, self.now())

    def act(self, request: Request, write: Callable[[], CommandOutcome]) -> Outcome:
        """Decide ``request``; when granted, run ``write`` under the grant and settle the hold by its outcome."""
        now = self.now()
        r = request
        lease = None if r.instant else r.lease_until
        decision = ledger.request(self.store, site_id=r.site_id, control=r.control, owner=r.owner, command=r.command,
                                  reason=r.reason, lease_until=lease, now=now, preempt=r.preempt)
        if decision.decision == "yielded":
            return Outcome(r, "yielded", holder=decision.holder)
        grant = Grant(r.site_id, r.control, r.owner, decision.request_id)
        try:
            with granted(grant):
                result = write()
        except Exception as exc:  # an unreachable device or a driver bug: recorded, the hold does not stay
            error = f"{type(exc).__name__}: {exc}"
            cid = self.store.record_command(r.site_id, r.device_kind or r.control, r.command, "error", error=error,
                                            owner=r.owner) if r.device_kind else None
            ledger.finish(self.store, decision, outcome="error", command_id=cid, error=error, end_status="failed",
                          now=self.now())
            return Outcome(r, "error", holder=decision.holder, error=error)
        outcome = str(result.outcome)
        # a failed command holds nothing: refused before any write, or put back into its saved state by the driver
        end_status = ("released" if r.releases or r.instant else None) if result.ok else "failed"
        ledger.finish(self.store, decision, outcome=outcome, command_id=result.command_id, error=result.error,
                      end_status=end_status, now=self.now(), refused=outcome == "refused")
        out = Outcome(r, "refused" if outcome == "refused" else "granted", holder=decision.holder, result=result)
        if outcome in ("error", "verify_failed") and result.written and not r.releases:
            out.safety_hold = self._safe_mode_hold(r, str(result.error))
        return out

    def _safe_mode_hold(self, r: Request, error: str) -> Hold | None:
        """After a write failed part-way the driver put the device back into its saved state; ``safety`` holds
        the control for a while so the next 5-minute plan does not hammer a device that just failed."""
        now = self.now()
        d = ledger.request(self.store, site_id=r.site_id, control=r.control, owner="safety", command="safe_mode",
                           reason=f"{r.command} for {r.owner} failed: {error}", lease_until=now + SAFETY_HOLD, now=now)
        ledger.finish(self.store, d, outcome="ok", command_id=None, error=None, end_status=None, now=now)
        return d.hold
