"""The automation rule engine: facts -> which rules fire (pure), and carrying out a firing's actions.

A rule fires on the *rising edge* of its condition (all ``when`` triggers true), not on every evaluation while it
stays true, and not again within ``cooldown_minutes``. Spike triggers are events: a rule with ``spike_start``
fires once per spike event (the event id is part of the firing id, so a lost cursor or a re-evaluation cannot
fire it twice). A trigger whose fact is unknown (no price stored yet, battery unreadable) makes the condition
unknown: the rule neither fires nor forgets its previous state.

Priority for actions that take the battery (see ``live.spike``): a spike response or a manual force mode
outranks an automation; such actions are skipped with that reason, recorded, and not retried.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import time
from typing import Any

import pandas as pd
from pydantic import TypeAdapter

from ..config import SiteConfig
from ..config.automations import (
    WEEKDAYS,
    Action,
    AutomationRule,
    ForceAction,
    NotifyAction,
    PriceTrigger,
    SetReserveAction,
    SimpleAction,
    SocTrigger,
    SpikeTrigger,
    TimeWindowTrigger,
)
from ..storage import HistoryStore, upsert_sql
from . import live_store
from .arbiter import Request
from .context import ControlContext
from .notify import Notification, NotificationCenter

log = logging.getLogger(__name__)

ACTIONS_ADAPTER: TypeAdapter[list[Action]] = TypeAdapter(list[Action])
SPIKE_LOOKBACK = pd.Timedelta(minutes=15)  # spike transitions newer than this count as "this evaluation"


@dataclass(frozen=True)
class Facts:
    """What the rules can see at one evaluation."""

    now: pd.Timestamp  # UTC wall clock
    tz: str
    import_price: float | None = None  # $/kWh
    export_price: float | None = None
    soc: float | None = None  # fraction 0-1
    spike_started: tuple[str, ...] = ()  # event ids of spikes that started recently
    spike_ended: tuple[str, ...] = ()

    @property
    def local(self) -> pd.Timestamp:
        return self.now.tz_convert(self.tz)


@dataclass(frozen=True)
class RuleMemory:
    condition: bool
    last_fired_at: pd.Timestamp | None = None


@dataclass(frozen=True)
class RuleEvaluation:
    rule_id: str
    condition: bool | None  # None = unknown (a fact was missing)
    fire_keys: tuple[str, ...]  # one firing per key; empty = no firing
    reason: str

    @property
    def fires(self) -> bool:
        return bool(self.fire_keys)


def _hhmm(text: str) -> time:
    h, m = text.split(":")
    return time(int(h), int(m))


def trigger_holds(t: Any, f: Facts) -> tuple[bool | None, str]:
    """(holds, why) for one trigger; holds is None when its fact is unknown."""
    if isinstance(t, TimeWindowTrigger):
        local = f.local
        start, end, now_t = _hhmm(t.start), _hhmm(t.end), local.time()
        inside = start <= now_t < end if start < end else (now_t >= start or now_t < end)
        # an overnight window belongs to the day it started on
        day = local if start < end or now_t >= start else local - pd.Timedelta(days=1)
        ok = inside and WEEKDAYS[day.weekday()] in t.days
        return ok, f"local time {local:%a %H:%M} {'in' if ok else 'not in'} {t.start}-{t.end}"
    if isinstance(t, PriceTrigger):
        price = f.import_price if t.which == "import" else f.export_price
        if price is None:
            return None, f"{t.which} price unknown"
        ok = price > t.price if t.kind == "price_above" else price < t.price
        op = ">" if t.kind == "price_above" else "<"
        return ok, f"{t.which} price {price:.4f} $/kWh {op if ok else 'not ' + op} {t.price:.4f}"
    if isinstance(t, SocTrigger):
        if f.soc is None:
            return None, "SOC unknown"
        pct = f.soc * 100
        ok = pct > t.soc_pct if t.kind == "soc_above" else pct < t.soc_pct
        op = ">" if t.kind == "soc_above" else "<"
        return ok, f"SOC {pct:.1f}% {op if ok else 'not ' + op} {t.soc_pct:.0f}%"
    if isinstance(t, SpikeTrigger):
        ids = f.spike_started if t.kind == "spike_start" else f.spike_ended
        what = "started" if t.kind == "spike_start" else "ended"
        return bool(ids), (f"spike {what}: {', '.join(ids)}" if ids else f"no spike {what}")
    raise TypeError(f"unknown trigger {t!r}")


def evaluate_rule(rule: AutomationRule, facts: Facts, memory: RuleMemory | None) -> RuleEvaluation:
    """Whether ``rule`` fires now. Pure."""
    parts = [trigger_holds(t, facts) for t in rule.when]
    reason = "; ".join(why for _, why in parts)
    values = [v for v, _ in parts]
    condition: bool | None = False if False in values else (None if None in values else True)
    if not rule.enabled:
        return RuleEvaluation(rule.id, condition, (), "rule disabled")
    if condition is not True:
        return RuleEvaluation(rule.id, condition, (), reason)
    spike = next((t for t in rule.when if isinstance(t, SpikeTrigger)), None)
    stamp = facts.now.floor("min").strftime("%Y%m%dT%H%MZ")
    if spike is not None:  # one firing per spike event
        ids = facts.spike_started if spike.kind == "spike_start" else facts.spike_ended
        return RuleEvaluation(rule.id, True, tuple(f"{spike.kind}@{i}" for i in ids), reason)
    if memory is not None and memory.condition:
        return RuleEvaluation(rule.id, True, (), reason + " (already true at the last evaluation)")
    if memory is not None and memory.last_fired_at is not None and \
            facts.now - memory.last_fired_at < pd.Timedelta(minutes=rule.cooldown_minutes):
        return RuleEvaluation(rule.id, True, (), reason + f" (cooldown {rule.cooldown_minutes} min)")
    return RuleEvaluation(rule.id, True, (stamp,), reason)


def firing_id(site_id: str, rule_id: str, key: str) -> str:
    return f"{site_id}:{rule_id}:{key}"


# -- facts from the store and the battery ---------------------------------------------------------------
def gather_facts(site: SiteConfig, store: HistoryStore, now: pd.Timestamp, price_now: pd.Timestamp | None = None,
                 read_soc: Callable[[], float | None] | None = None) -> Facts:
    """Facts for one site: stored prices at ``price_now`` (the site's clock: the replay clock for the demo),
    the SOC (``read_soc``, else telemetry stored in the last 10 minutes), and recent spike transitions."""
    at = price_now or now
    with store.connect() as con:
        row = con.execute(
            "SELECT import_price, export_price FROM prices WHERE site_id = ? AND interval_start <= ? "
            "AND interval_start > ? ORDER BY interval_start DESC LIMIT 1",
            [site.id, at.to_pydatetime(), (at - pd.Timedelta(minutes=30)).to_pydatetime()]).fetchone()
        started = con.execute(
            "SELECT event_id FROM spike_events WHERE site_id = ? AND seen_at > ? ORDER BY seen_at",
            [site.id, (now - SPIKE_LOOKBACK).to_pydatetime()]).fetchall()
        ended = con.execute(
            "SELECT event_id FROM spike_events WHERE site_id = ? AND status = 'ended' "
            "AND coalesce(restore_verified_at, end_seen_at) > ? ORDER BY end_seen_at",
            [site.id, (now - SPIKE_LOOKBACK).to_pydatetime()]).fetchall()
        tel = con.execute("SELECT soc FROM telemetry WHERE site_id = ? AND ts > ? ORDER BY ts DESC LIMIT 1",
                          [site.id, (now - pd.Timedelta(minutes=10)).to_pydatetime()]).fetchone()
    soc = None
    if read_soc is not None:
        try:
            soc = read_soc()
        except Exception as exc:  # the battery may be unreachable; fall back to stored telemetry
            log.info("%s: SOC read failed (%s); using stored telemetry", site.id, exc)
    if soc is None and tel is not None and tel[0] is not None:
        soc = float(tel[0])
    return Facts(now=now, tz=site.timezone, import_price=float(row[0]) if row else None,
                 export_price=float(row[1]) if row else None, soc=soc,
                 spike_started=tuple(r[0] for r in started), spike_ended=tuple(r[0] for r in ended))


def needs_soc(rules: list[AutomationRule]) -> bool:
    return any(isinstance(t, SocTrigger) for r in rules if r.enabled for t in r.when)


def load_memory(store: HistoryStore, site_id: str) -> dict[str, RuleMemory]:
    df = store.query("SELECT rule_id, condition, last_fired_at FROM automation_state WHERE site_id = ?", [site_id])
    out = {}
    for r in df.itertuples(index=False):
        fired = None if pd.isna(r.last_fired_at) else pd.Timestamp(r.last_fired_at).tz_convert("UTC")
        out[r.rule_id] = RuleMemory(bool(r.condition), fired)
    return out


def save_memory(store: HistoryStore, site_id: str, rule_id: str, memory: RuleMemory) -> None:
    with store.connect() as con:
        con.execute(upsert_sql("automation_state", ["site_id", "rule_id", "condition", "last_fired_at", "updated_at"],
                               ["site_id", "rule_id"]),
                    [site_id, rule_id, memory.condition,
                     memory.last_fired_at.to_pydatetime() if memory.last_fired_at is not None else None,
                     pd.Timestamp.now(tz="UTC").to_pydatetime()])


@dataclass
class Firing:
    firing_id: str
    site_id: str
    rule_id: str
    fired_at: pd.Timestamp
    reason: str
    actions: list[Any]
    new: bool = True  # False when this firing was already recorded (nothing to do)


def evaluate_site(site: SiteConfig, store: HistoryStore, facts: Facts) -> tuple[list[Firing], list[RuleEvaluation]]:
    """Evaluate every rule of a site, persist edge memory, record new firings (status ``requested``)."""
    memory = load_memory(store, site.id)
    firings: list[Firing] = []
    evaluations: list[RuleEvaluation] = []
    for rule in site.automations:
        ev = evaluate_rule(rule, facts, memory.get(rule.id))
        evaluations.append(ev)
        prev = memory.get(rule.id)
        if ev.condition is not None:
            fired_at = facts.now if ev.fires else (prev.last_fired_at if prev else None)
            save_memory(store, site.id, rule.id, RuleMemory(ev.condition, fired_at))
        for key in ev.fire_keys:
            f = Firing(firing_id(site.id, rule.id, key), site.id, rule.id, facts.now, ev.reason, list(rule.then))
            f.new = record_firing(store, f)
            firings.append(f)
    return firings, evaluations


def record_firing(store: HistoryStore, f: Firing) -> bool:
    """Insert the firing unless it exists; True when it is new."""
    actions = [a.model_dump(mode="json") for a in f.actions]
    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    with store.connect() as con:
        exists = con.execute("SELECT 1 FROM automation_firings WHERE firing_id = ?", [f.firing_id]).fetchone()
        if exists:
            return False
        con.execute("INSERT INTO automation_firings (firing_id, site_id, rule_id, fired_at, reason, actions, status, "
                    "updated_at) VALUES (?, ?, ?, ?, ?, ?, 'requested', ?)",
                    [f.firing_id, f.site_id, f.rule_id, f.fired_at.to_pydatetime(), f.reason, json.dumps(actions), now])
    return True


REQUEST_TTL = pd.Timedelta(minutes=10)


def pending_firings(store: HistoryStore, site_id: str, now: pd.Timestamp) -> list[tuple[str, str]]:
    """(firing_id, rule_id) still waiting for their run; those older than ``REQUEST_TTL`` become ``expired``
    (a force charge requested 20 minutes ago is no longer what the rule meant)."""
    cutoff = (now - REQUEST_TTL).to_pydatetime()
    with store.connect() as con:
        con.execute("UPDATE automation_firings SET status = 'expired', updated_at = ? WHERE site_id = ? AND "
                    "status = 'requested' AND fired_at <= ?", [now.to_pydatetime(), site_id, cutoff])
        rows = con.execute("SELECT firing_id, rule_id FROM automation_firings WHERE site_id = ? AND status = "
                           "'requested' ORDER BY fired_at", [site_id]).fetchall()
    return [(r[0], r[1]) for r in rows]


def load_firing(store: HistoryStore, fid: str) -> Firing:
    with store.connect() as con:
        row = con.execute("SELECT site_id, rule_id, fired_at, reason, actions FROM automation_firings "
                          "WHERE firing_id = ?", [fid]).fetchone()
    if row is None:
        raise LookupError(f"automation firing {fid!r} is not recorded")
    return Firing(fid, row[0], row[1], pd.Timestamp(row[2]).tz_convert("UTC"), row[3],
                  ACTIONS_ADAPTER.validate_python(json.loads(row[4])), new=False)


# -- carrying out a firing -------------------------------------------------------------------------------
@dataclass
class ActionResult:
    action: str
    outcome: str  # ok | skipped | failed
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def execute_firing(ctx: ControlContext, site: SiteConfig, firing: Firing, center: NotificationCenter | None = None,
                   run_id: str | None = None) -> list[ActionResult]:
    """Carry out the firing's actions in order; record the outcome on the firing row."""
    store = ctx.store
    center = center or NotificationCenter(site.notifications, store)
    results: list[ActionResult] = []
    lease: pd.Timestamp | None = None
    for act in firing.actions:
        try:
            res = _execute(ctx, site, firing, act, center)
        except Exception as exc:  # an unreachable battery fails this action, the rest still run
            res = ActionResult(getattr(act, "action", "?"), "failed", f"{type(exc).__name__}: {exc}")
        if res.data.get("lease_until"):
            lease = pd.Timestamp(res.data["lease_until"])
        results.append(res)
    failed = [r for r in results if r.outcome == "failed"]
    status = "ok" if not failed else ("failed" if len(failed) == len(results) else "partial")
    with store.connect() as con:
        con.execute("UPDATE automation_firings SET status = ?, results = ?, run_id = ?, lease_until = ?, "
                    "updated_at = ? WHERE firing_id = ?",
                    [status, live_store.to_json([r.__dict__ for r in results]), run_id,
                     lease.to_pydatetime() if lease is not None else None,
                     ctx.clock.wall().to_pydatetime(), firing.firing_id])
    if failed:
        center.send(Notification(event="automation_failed", title=f"Automation {firing.rule_id} failed",
                                 message="; ".join(f"{r.action}: {r.detail}" for r in failed), site_id=site.id,
                                 data={"firing_id": firing.firing_id}))
    return results


def _execute(ctx: ControlContext, site: SiteConfig, firing: Firing, act: Any,
             center: NotificationCenter) -> ActionResult:
    if isinstance(act, NotifyAction):
        deliveries = center.send(Notification(event="automation", title=act.title or f"Automation {firing.rule_id}",
                                              message=act.message, site_id=site.id,
                                              data={"rule": firing.rule_id, "reason": firing.reason}),
                                 channels=act.channels)
        bad = [d for d in deliveries if not d.ok]
        if deliveries and len(bad) == len(deliveries):
            return ActionResult("notify", "failed", "; ".join(f"{d.channel}: {d.error}" for d in bad))
        return ActionResult("notify", "ok", f"sent via {', '.join(d.channel for d in deliveries if d.ok) or 'none'}")
    reason = f"automation {firing.rule_id}: {firing.reason}"
    kind = site.battery.kind
    lease = None
    if isinstance(act, ForceAction):
        lease = ctx.clock.wall() + pd.Timedelta(minutes=act.minutes)
        req = Request(site.id, "battery", "automation", act.action, reason, lease_until=lease, device_kind=kind)

        def write(dev: Any) -> Any:
            fn = dev.force_charge if act.action == "force_charge" else dev.force_discharge
            return fn(act.minutes, act.power_kw)
    elif isinstance(act, SetReserveAction):
        req = Request(site.id, "battery_settings", "automation", "set_backup_reserve", reason, instant=True,
                      device_kind=kind)

        def write(dev: Any) -> Any:
            return dev.set_backup_reserve(act.percent)
    elif isinstance(act, SimpleAction):
        control = "battery" if act.action == "restore_normal" else "battery_export"
        req = Request(site.id, control, "automation", act.action, reason,
                      releases=act.action in ("restore_normal", "restore_curtailment"), device_kind=kind)

        def write(dev: Any) -> Any:
            return getattr(dev, act.action)()
    else:
        raise TypeError(f"unknown action {act!r}")
    with ctx.battery(site) as dev:
        out = ctx.arbiter.act(req, lambda: write(dev))
    if out.yielded:
        return ActionResult(act.action, "skipped", out.describe())
    if out.ok:
        data = {"lease_until": lease.isoformat()} if lease is not None else {}
        return ActionResult(act.action, "ok", "verified", {**data, "command_id": out.command_id})
    return ActionResult(act.action, "failed", f"{out.outcome}: {out.as_dict()['error']}", {"command_id": out.command_id})
