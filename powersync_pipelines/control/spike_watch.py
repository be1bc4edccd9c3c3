"""One pass of the AEMO spike watch over every site: fetch prices, decide, command, record, notify.

This is the *fast path*: it runs inside the Dagster sensor evaluation (no run is launched), because the run
launch is the slow part of the sensor -> battery chain (see ``defs/live/sensors.py`` for the measurements).
The same function backs ``spike_watch_job``, so the run-based path does exactly the same work.

Order inside a transition, and why:
1. the event row is written *before* the command (``entering``) so a crash between command and record still
   leaves a record to resume from, and the resumed tick re-issues an idempotent command rather than forgetting;
2. the command is verified by read-back in the driver; ``verified_at`` is taken when it returns ok;
3. notifications go last, so a slow webhook never delays the battery.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import httpx
import pandas as pd

from ..config import SiteConfig
from ..storage import HistoryStore
from ..tariffs.tesla import spike_tariff
from . import ledger, live_store
from .arbiter import Request
from .context import ControlContext
from .dispatch import current_prices, source_for
from .notify import Notification, NotificationCenter
from .spike import (
    FORCE_MINUTES,
    Decision,
    DispatchPrice,
    SpikeEvent,
    SpikeParams,
    decide,
    new_event_id,
    spike_params,
)

log = logging.getLogger(__name__)


@dataclass
class SiteResult:
    site_id: str
    decision: Decision | None
    price: DispatchPrice | None = None
    event: SpikeEvent | None = None
    error: str | None = None

    @property
    def changed(self) -> bool:
        return self.decision is not None and self.decision.kind not in ("none", "hold")

    def summary(self) -> str:
        price = f"{self.price.rrp:.2f} $/MWh @ {self.price.interval_start:%H:%M}Z" if self.price else "no price"
        what = self.decision.kind if self.decision else "skipped"
        why = self.error or (self.decision.reason if self.decision else "")
        return f"{self.site_id}: {what} ({price}; {why})"


@dataclass
class WatchReport:
    started_at: pd.Timestamp
    results: list[SiteResult] = field(default_factory=list)
    price_errors: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> list[SiteResult]:
        return [r for r in self.results if r.changed]

    def summary(self) -> str:
        lines = [r.summary() for r in self.results] or ["no site has the spike watch enabled"]
        lines += [f"price feed {k}: {v}" for k, v in self.price_errors.items()]
        return "; ".join(lines)


def response_for(site: SiteConfig) -> str:
    return "spike_tariff" if site.battery.kind == "tesla" else "force_discharge"


def run_spike_watch(sites: list[SiteConfig], ctx: ControlContext, *, client: httpx.Client | None = None,
                    notify: bool = True, only_site: str | None = None) -> WatchReport:
    """Evaluate the watch once for every site (``only_site`` limits it to one)."""
    store = ctx.store
    now = ctx.clock.wall()
    watched = [s for s in sites if spike_params(s) is not None and (only_site is None or s.id == only_site)]
    report = WatchReport(started_at=now)
    if not watched:
        return report
    prices, report.price_errors = current_prices(watched, now, ctx.clock, client=client)
    seen: dict[str, DispatchPrice] = {}
    for key, price in prices.items():
        try:
            seen[key] = live_store.record_dispatch_seen(store, price)
        except Exception as exc:  # the price is still usable for the decision; the record is for latency stats
            log.warning("could not record dispatch price %s: %s", key, exc)
            seen[key] = price
    for site in watched:
        src = source_for(site)
        price = seen.get(src.key) if src is not None else None
        try:
            report.results.append(_watch_site(site, ctx, price, notify))
        except Exception as exc:  # one site's failure must not stop the others
            log.exception("spike watch failed for %s", site.id)
            report.results.append(SiteResult(site.id, None, price, error=f"{type(exc).__name__}: {exc}"))
    return report


def _watch_site(site: SiteConfig, ctx: ControlContext, price: DispatchPrice | None, notify: bool) -> SiteResult:
    params = spike_params(site)
    assert params is not None
    store = ctx.store
    now = ctx.clock.wall()
    event = live_store.open_event(store, site.id)
    hold = ledger.holder(store, site.id, "battery", now)
    decision = decide(event, price, params, now, hold.owner if hold is not None else "none")
    center = NotificationCenter(site.notifications, store) if notify else None
    runner = _Transition(site, ctx, params, price, center)
    new_event = runner.apply(decision, event)
    return SiteResult(site.id, decision, price, new_event)


@dataclass
class _Transition:
    site: SiteConfig
    ctx: ControlContext
    params: SpikeParams
    price: DispatchPrice | None
    center: NotificationCenter | None

    @property
    def store(self) -> HistoryStore:
        return self.ctx.store

    def apply(self, d: Decision, ev: SpikeEvent | None) -> SpikeEvent | None:
        k = d.kind
        if k == "none":
            return ev
        if k == "start":
            ev = self._new_event("entering", response_for(self.site))
            return self._start(live_store.write_event(self.store, ev), d)
        if k == "defer":
            ev = live_store.write_event(self.store, self._new_event("deferred", "deferred_to_manual"))
            return self._notify_once(ev, "spike_deferred", "AEMO spike: deferring to a manual force mode",
                                     f"{self._price_text()} is at or above {self.params.threshold:.0f} $/MWh, but "
                                     "a manual force mode holds the battery; the spike watch takes over when it ends.")
        assert ev is not None
        before, ev = ev, self._observe(ev)
        if k in ("retry_start", "take_over", "resume", "rearm"):
            if k in ("take_over", "resume"):
                ev = replace(ev, status="entering", response=response_for(self.site))
            return self._start(ev, d)
        if k == "yield":
            return live_store.write_event(self.store, replace(ev, status="deferred", last_error=d.reason))
        if k in ("restore", "retry_restore"):
            return self._restore(ev, d)
        if k == "end_deferred":
            ev = replace(ev, status="ended", end_interval=self._interval(), end_rrp=self._rrp(),
                         end_seen_at=self._seen())
            ev = live_store.write_event(self.store, ev)
            return self._notify_once(ev, "spike_end", "AEMO spike over",
                                     f"{self._price_text()}: spike over ({d.reason}); the battery stayed under the "
                                     "manual force mode, nothing to restore.")
        # hold: persist the newest interval and peak only when they moved
        return live_store.write_event(self.store, ev) if ev != before else ev

    # -- transitions ---------------------------------------------------------------------------------
    def _start(self, ev: SpikeEvent, d: Decision) -> SpikeEvent:
        sent = self.ctx.clock.wall()
        ok, outcome, error, lease = self._command_start(d.reason)
        done = self.ctx.clock.wall()
        first = ev.verified_at is None
        ev = replace(ev, command_sent_at=ev.command_sent_at or sent, command_outcome=outcome, command_error=error,
                     command_attempts=ev.command_attempts + 1, status="active" if ok else "entering",
                     lease_until=lease if ok else ev.lease_until,
                     verified_at=(done if ok and first else ev.verified_at), last_error=None if ok else error,
                     last_interval=self._interval() or ev.last_interval)
        ev = live_store.write_event(self.store, ev)
        if ok:
            action = ("spike tariff uploaded, battery in autonomous mode" if ev.response == "spike_tariff"
                      else f"battery force-discharging{self._kw_text()}")
            took = (ev.verified_at - ev.seen_at).total_seconds() if ev.verified_at is not None else float("nan")
            return self._notify_once(ev, "spike_start", "AEMO price spike: battery responding",
                                     f"{self._price_text()} >= {self.params.threshold:.0f} $/MWh: {action} "
                                     f"(verified {took:.1f} s after the price was seen).")
        return self._notify_once(ev, "command_failed", "AEMO spike: battery command failed",
                                 f"{self._price_text()}: {ev.response} failed ({error}); retrying every minute.")

    def _restore(self, ev: SpikeEvent, d: Decision) -> SpikeEvent:
        if ev.end_seen_at is None:
            ev = replace(ev, end_interval=self._interval(), end_rrp=self._rrp(), end_seen_at=self._seen())
        ev = live_store.write_event(self.store, replace(ev, status="restoring", last_error=d.reason
                                                        if ev.status != "restoring" else ev.last_error))
        sent = self.ctx.clock.wall()
        ok, outcome, error = self._command_restore(d.reason)
        done = self.ctx.clock.wall()
        ev = replace(ev, restore_sent_at=ev.restore_sent_at or sent, restore_attempts=ev.restore_attempts + 1,
                     status="ended" if ok else "restoring", restore_verified_at=done if ok else None,
                     last_error=None if ok else f"restore {outcome}: {error}")
        ev = live_store.write_event(self.store, ev)
        if ok:
            return self._notify_once(ev, "spike_end", "AEMO spike over: battery restored",
                                     f"{self._price_text()} ({d.reason}); the battery's previous settings were "
                                     f"restored and verified after {ev.restore_attempts} attempt(s).")
        return self._notify_once(ev, "restore_failed", "AEMO spike: restore failed",
                                 f"Restoring the battery after the spike failed ({error}); retrying every minute "
                                 "until it holds.")

    # -- device commands -----------------------------------------------------------------------------
    def _command_start(self, reason: str) -> tuple[bool, str, str | None, pd.Timestamp | None]:
        """Force discharge (or upload the spike tariff) as owner ``spike``, leased for ``FORCE_MINUTES``."""
        site, ctx = self.site, self.ctx
        lease = ctx.clock.wall() + pd.Timedelta(minutes=FORCE_MINUTES)
        response = response_for(site)
        req = Request(site.id, "battery", "spike", response, reason, lease_until=lease, device_kind=site.battery.kind)
        with ctx.battery(site) as dev:
            if response == "spike_tariff":
                payload = spike_tariff(site, ctx.clock.wall(), self._rrp() or self.params.threshold)
                out = ctx.arbiter.act(req, lambda: dev.apply_spike_tariff(payload, lease))
            else:
                out = ctx.arbiter.act(req, lambda: dev.force_discharge(FORCE_MINUTES, site.features.spike_watch.discharge_kw))
        if out.yielded:
            return False, "yielded", out.describe(), None
        return out.ok, out.outcome, out.as_dict()["error"], lease if out.ok else None

    def _command_restore(self, reason: str) -> tuple[bool, str, str | None]:
        """Give the battery back (restore its saved state) as ``spike``; if a higher owner took it meanwhile,
        the restore is theirs to make and the spike ends without touching the battery."""
        site, ctx = self.site, self.ctx
        req = Request(site.id, "battery", "spike", "restore_normal", reason, releases=True,
                      device_kind=site.battery.kind)
        with ctx.battery(site) as dev:
            out = ctx.arbiter.act(req, dev.restore_normal)
        if out.yielded:
            return True, "yielded", out.describe()
        return out.ok, out.outcome, out.as_dict()["error"]

    # -- helpers -------------------------------------------------------------------------------------
    def _new_event(self, status: str, response: str) -> SpikeEvent:
        p = self.price
        assert p is not None
        return SpikeEvent(
            event_id=new_event_id(self.site.id, p), site_id=self.site.id, region=p.region,
            battery_kind=self.site.battery.kind, threshold_per_mwh=self.params.threshold,
            hysteresis_per_mwh=self.params.hysteresis, status=status, response=response,  # type: ignore[arg-type]
            start_interval=p.interval_start, start_rrp=p.rrp, start_source=p.source, seen_at=p.seen_at,
            peak_rrp=p.rrp, last_interval=p.interval_start)

    def _observe(self, ev: SpikeEvent) -> SpikeEvent:
        if self.price is None or self.price.stale(self.ctx.clock.wall()):
            return ev
        return replace(ev, peak_rrp=max(ev.peak_rrp, self.price.rrp), last_interval=self.price.interval_start)

    def _interval(self) -> pd.Timestamp | None:
        return self.price.interval_start if self.price else None

    def _rrp(self) -> float | None:
        return self.price.rrp if self.price else None

    def _seen(self) -> pd.Timestamp:
        return self.price.seen_at if self.price else self.ctx.clock.wall()

    def _price_text(self) -> str:
        if self.price is None:
            return f"{self.site.id}: no current dispatch price"
        local = self.price.interval_start.tz_convert(self.site.tz)
        return f"{self.site.id}: {self.price.region} RRP {self.price.rrp:,.2f} $/MWh at {local:%H:%M}"

    def _kw_text(self) -> str:
        kw = self.site.features.spike_watch.discharge_kw or self.site.battery.max_discharge_kw
        return f" at {min(kw, self.site.battery.max_discharge_kw):.1f} kW"

    def _notify_once(self, ev: SpikeEvent, kind: str, title: str, message: str) -> SpikeEvent:
        if self.center is None or kind in ev.notified:
            return ev
        self.center.send(Notification(event=kind, title=title, message=message, site_id=self.site.id,
                                      data={"event_id": ev.event_id, "status": ev.status,
                                            "rrp": self._rrp(), "threshold": self.params.threshold}))
        return live_store.write_event(self.store, live_store.mark_notified(ev, kind))
