"""The AEMO spike watch as a pure state machine: (event in progress, price seen, who holds the battery) -> decision.

Phases of one event (stored in ``spike_events.status``)::

    idle --RRP >= threshold--> entering --command verified--> active --RRP < threshold - hysteresis--> restoring
      |                           ^  (retried every tick until verified)  |                               |
      |                           +---------------------------------------+ (RRP >= threshold again)      |
      +--manual force mode holds the battery--> deferred --manual mode over, spike on--> entering          |
                                                    |--RRP < exit--> ended        restore verified --> ended

Who holds the battery comes from the control ledger (``control.ledger``); the priority is the arbiter's
(``powersync_pipelines.owners``: safety > manual > spike > automation > curtailment > ev > optimizer), and why it matters here:

* An owner above the spike watch (``safety`` after a failed write, ``manual`` for a force mode the owner asked
  for, bounded to 15-240 min) holds the battery: the watch records the spike as ``deferred``, notifies, and takes
  over when that hold ends while the spike is still on. It never restores over them.
* Below it (automations, the optimizer's plan slot): the watch takes the battery; while it holds, their
  requests are yielded by the arbiter. If the spike's own hold is gone (its lease lapsed), the next tick
  re-asserts the spike command. The state saved before the *first* forced write is kept (``save_if_absent``),
  so the spike's restore puts back the owner's settings, and the next 5-minute plan resumes the optimizer.

No price (NEMWEB down, stale file) holds the current phase; after ``PRICE_TIMEOUT`` without a price an active
spike is ended conservatively (restore), so a dead feed never leaves a battery force-discharging.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from ..config import SiteConfig
from ..owners import outranks

# Defaults by battery kind (SPEC §9): Tesla uses a spike tariff from $300/MWh; Sungrow/Sigenergy on a VPP
# (Globird) force-discharge from $3000/MWh.
DEFAULT_THRESHOLDS = {"tesla": 300.0, "sungrow_sh": 3000.0, "sigenergy": 3000.0, "simulated": 3000.0}
PRICE_TIMEOUT = pd.Timedelta(minutes=15)
STALE_PRICE = pd.Timedelta(minutes=15)  # a dispatch interval older than this is not "the current price"
FORCE_MINUTES = 30  # the forced mode is a lease: a dead pipeline restores by expiry
REARM_WHEN_LEFT = pd.Timedelta(minutes=20)  # renew the lease once it has less than this left

Status = Literal["entering", "active", "deferred", "restoring", "ended"]
Holder = str  # an owner of ``powersync_pipelines.owners`` or "none"
DecisionKind = Literal["none", "start", "retry_start", "rearm", "hold", "defer", "yield", "take_over",
                       "restore", "retry_restore", "resume", "end_deferred"]


@dataclass(frozen=True)
class DispatchPrice:
    """One region's dispatch price as the watch saw it."""

    region: str
    interval_start: pd.Timestamp  # UTC start of the 5-minute dispatch interval
    rrp: float  # $/MWh ex-GST, as published
    source: str  # DISPATCHIS file name, or "replay"
    seen_at: pd.Timestamp  # wall clock when this watch first saw it

    def stale(self, now: pd.Timestamp) -> bool:
        return now - (self.interval_start + pd.Timedelta(minutes=5)) > STALE_PRICE


@dataclass(frozen=True)
class SpikeParams:
    threshold: float
    hysteresis: float

    @property
    def exit_below(self) -> float:
        return self.threshold - self.hysteresis


def spike_params(site: SiteConfig) -> SpikeParams | None:
    """The site's thresholds, or None when the watch does not apply (disabled, UK, no NEM region)."""
    cfg = site.features.spike_watch
    if not cfg.enabled or site.country != "AU" or not watch_region(site):
        return None
    threshold = cfg.threshold_per_mwh or DEFAULT_THRESHOLDS.get(site.battery.kind, 3000.0)
    return SpikeParams(threshold=float(threshold), hysteresis=float(cfg.hysteresis_per_mwh))


def watch_region(site: SiteConfig) -> str | None:
    """The NEM region whose dispatch price the site watches (None: nothing to watch)."""
    if site.provider.kind == "normalized":
        return None
    return site.provider.region


@dataclass(frozen=True)
class SpikeEvent:
    """The durable record of one spike at one site (a row of ``spike_events``)."""

    event_id: str
    site_id: str
    region: str
    battery_kind: str
    threshold_per_mwh: float
    hysteresis_per_mwh: float
    status: Status
    response: str
    start_interval: pd.Timestamp
    start_rrp: float
    start_source: str | None
    seen_at: pd.Timestamp
    peak_rrp: float
    last_interval: pd.Timestamp | None = None
    command_sent_at: pd.Timestamp | None = None
    verified_at: pd.Timestamp | None = None
    command_outcome: str | None = None
    command_error: str | None = None
    command_attempts: int = 0
    lease_until: pd.Timestamp | None = None
    end_interval: pd.Timestamp | None = None
    end_rrp: float | None = None
    end_seen_at: pd.Timestamp | None = None
    restore_sent_at: pd.Timestamp | None = None
    restore_verified_at: pd.Timestamp | None = None
    restore_attempts: int = 0
    last_error: str | None = None
    notified: frozenset[str] = field(default_factory=frozenset)

    @property
    def open(self) -> bool:
        return self.status != "ended"

    @property
    def verified(self) -> bool:
        """The battery is under the spike command (verified since the last (re)start)."""
        return self.status == "active" and self.command_outcome == "ok"


def new_event_id(site_id: str, price: DispatchPrice) -> str:
    return f"{site_id}:{price.region}:{price.interval_start.strftime('%Y%m%dT%H%MZ')}"


@dataclass(frozen=True)
class Decision:
    kind: DecisionKind
    reason: str

    @property
    def commands_battery(self) -> bool:
        return self.kind in ("start", "retry_start", "rearm", "take_over", "resume", "restore", "retry_restore")


def decide(event: SpikeEvent | None, price: DispatchPrice | None, params: SpikeParams, now: pd.Timestamp,
           holder: Holder = "none") -> Decision:
    """What to do this tick. Pure: every input is passed in, nothing is read or written here.

    ``price`` is None when no usable price was available this tick (fetch failed or stale). ``holder`` says
    who holds the battery right now (an owner from the control ledger, or "none").
    """
    fresh = price if price is not None and not price.stale(now) else None
    thr, low = params.threshold, params.exit_below
    if event is None or not event.open:
        if fresh is None:
            return Decision("none", "no current dispatch price")
        if fresh.rrp >= thr:
            if _above_spike(holder):
                return Decision("defer", f"RRP {fresh.rrp:.2f} >= {thr:.0f} $/MWh but {holder} holds the battery "
                                         f"({holder} outranks the spike watch)")
            return Decision("start", f"RRP {fresh.rrp:.2f} >= threshold {thr:.0f} $/MWh")
        return Decision("none", f"RRP {fresh.rrp:.2f} < threshold {thr:.0f} $/MWh")

    silent_for = now - _last_price_time(event, fresh)
    if event.status == "restoring":
        if fresh is not None and fresh.rrp >= thr:
            return Decision("resume", f"RRP {fresh.rrp:.2f} >= threshold {thr:.0f} $/MWh again while restoring")
        return Decision("retry_restore", f"restore not verified yet (attempt {event.restore_attempts + 1})")

    if event.status == "deferred":
        if fresh is None:
            if silent_for > PRICE_TIMEOUT:
                return Decision("end_deferred", f"no dispatch price for {_mins(silent_for)} min")
            return Decision("hold", "deferred to a higher owner; no current price")
        if fresh.rrp < low:
            return Decision("end_deferred", f"RRP {fresh.rrp:.2f} < {low:.0f} $/MWh (threshold - hysteresis)")
        if _above_spike(holder):
            return Decision("hold", f"RRP {fresh.rrp:.2f}; {holder} still holds the battery")
        return Decision("take_over", f"the higher owner's hold is over while RRP {fresh.rrp:.2f} >= {low:.0f} $/MWh")

    # entering / active
    if fresh is None:
        if silent_for > PRICE_TIMEOUT:
            return Decision("restore", f"no dispatch price for {_mins(silent_for)} min: ending the spike "
                                       "conservatively")
        if not event.verified:
            return Decision("retry_start", "spike command not verified yet; no current price")
        return Decision("hold", "no current price; holding the spike response")
    if fresh.rrp < low:
        return Decision("restore", f"RRP {fresh.rrp:.2f} < {low:.0f} $/MWh (threshold {thr:.0f} - "
                                   f"hysteresis {params.hysteresis:.0f})")
    if _above_spike(holder):
        return Decision("yield", f"{holder} took the battery during the spike (RRP {fresh.rrp:.2f})")
    if not event.verified:
        return Decision("retry_start", f"spike command not verified yet (attempt {event.command_attempts + 1})")
    if holder != "spike":
        return Decision("rearm", f"the battery left the spike response ({holder} holds it): re-asserting")
    if event.lease_until is not None and event.lease_until - now < REARM_WHEN_LEFT:
        return Decision("rearm", f"renewing the spike lease (ends {event.lease_until.isoformat()})")
    return Decision("hold", f"RRP {fresh.rrp:.2f} >= {low:.0f} $/MWh: spike continues")


def _above_spike(holder: Holder) -> bool:
    return holder != "none" and outranks(holder, "spike")


def _last_price_time(event: SpikeEvent, fresh: DispatchPrice | None) -> pd.Timestamp:
    if fresh is not None:
        return fresh.seen_at
    last = event.last_interval or event.start_interval
    return last + pd.Timedelta(minutes=5)


def _mins(td: pd.Timedelta) -> int:
    return int(td.total_seconds() // 60)
