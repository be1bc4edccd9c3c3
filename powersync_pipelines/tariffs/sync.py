"""Tariff sync decisions: build, compare with what the battery already has, upload only on a material change.

Why "material": every upload is an API call the owner may pay for (Tesla Fleet API bills per call; Teslemetry
allows 30 calls / minute) and Powerwalls re-plan on each new tariff, so re-sending a table that moved by a
fraction of a cent only adds churn. The comparison is against the last payload that was actually *sent*, so
small drifts accumulate until they matter.

Every decision is stored (``HistoryStore.record_payload``), one row per site, format and planning slot (a re-run of
the slot updates its row; a row that says "sent" is never downgraded): what was built, whether it was sent, the reply or
the error, and a note with the diff summary. Too-incomplete prices (more than 10 % of the next 24 h missing,
SPEC §3) abort the sync and keep the last good tariff on the battery.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pandas as pd

from ..config import SiteConfig
from ..storage import HistoryStore
from ..storage.db import payload_slot_id
from .periods import PERIOD_NAMES, TariffError, missing_fraction
from .sigenergy import build_sigenergy_tariff
from .tesla import build_tesla_tariff, payload_hash

Format = Literal["tesla", "sigenergy"]
FORMATS: tuple[str, ...] = ("tesla", "sigenergy")
MAX_MISSING_FRACTION = 0.10
PLANNING_SLOT = pd.Timedelta(minutes=5)  # one stored decision per site, format and planning slot
DEFAULT_MIN_CHANGE = 0.01  # $/kWh on any one half hour's buy or sell


@dataclass
class SyncDecision:
    site_id: str
    format: str
    action: Literal["upload", "skip", "abort"]
    reason: str
    payload: dict[str, Any] | None
    payload_hash: str | None
    previous_hash: str | None
    missing_fraction: float
    diff: dict[str, Any] = field(default_factory=dict)
    sent: bool = False
    reply: Any = None
    error: str | None = None
    payload_id: str | None = None

    def summary(self) -> dict[str, Any]:
        """Metadata for the UI (no payload body)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("payload", "diff")}
        out["changed_periods"] = len(self.diff.get("changes", {}))
        out["max_change"] = self.diff.get("max_change")
        return out


def default_format(site: SiteConfig) -> Format:
    return "sigenergy" if site.battery.kind == "sigenergy" else "tesla"


def build_payload(fmt: str, prices: pd.DataFrame, site: SiteConfig, now: pd.Timestamp,
                  plan: pd.DataFrame | None = None) -> dict[str, Any]:
    if fmt == "tesla":
        return build_tesla_tariff(prices, site, now, plan)
    if fmt == "sigenergy":
        return build_sigenergy_tariff(prices, site, now, plan)
    raise ValueError(f"unknown tariff format {fmt!r} (expected one of {', '.join(FORMATS)})")


def rate_table(payload: dict[str, Any], fmt: str) -> dict[str, tuple[float, float]]:
    """(buy, sell) in currency/kWh per ``PERIOD_HH_MM`` for either format (for diffs)."""
    if fmt == "tesla":
        body = payload.get("tariff_content_v2", payload)
        buy = body["energy_charges"]["Summer"]["rates"]
        sell = body["sell_tariff"]["energy_charges"]["Summer"]["rates"]
        return {n: (float(buy[n]), float(sell[n])) for n in PERIOD_NAMES}
    if fmt == "sigenergy":

        def table(side: str) -> dict[str, float]:
            slots = payload[side]["staticPricing"]["combinedPrices"][0]["weekPrices"][0]["timeRange"]
            out = {}
            for slot in slots:
                hh, mm = slot["timeRange"][:5].split(":")
                out[f"PERIOD_{hh}_{mm}"] = float(slot["price"]) / 100.0
            return out

        b, s = table("buyPrice"), table("sellPrice")
        return {n: (b[n], s[n]) for n in PERIOD_NAMES}
    raise ValueError(f"unknown tariff format {fmt!r}")


def _skeleton(payload: dict[str, Any], fmt: str) -> str:
    """The payload without its rates: a change here (names, codes, station) is always material."""
    clone = json.loads(json.dumps(payload))
    if fmt == "tesla":
        body = clone.get("tariff_content_v2", clone)
        body["energy_charges"]["Summer"]["rates"] = {}
        body["sell_tariff"]["energy_charges"]["Summer"]["rates"] = {}
    else:
        for side in ("buyPrice", "sellPrice"):
            for slot in clone[side]["staticPricing"]["combinedPrices"][0]["weekPrices"][0]["timeRange"]:
                slot["price"] = 0
    return json.dumps(clone, sort_keys=True)


def diff_payloads(previous: dict[str, Any] | None, new: dict[str, Any], fmt: str) -> dict[str, Any]:
    """Per-period rate changes and whether anything but the rates changed."""
    if previous is None:
        return {"first": True, "structure_changed": True, "changes": {}, "max_change": None}
    try:
        old, cur = rate_table(previous, fmt), rate_table(new, fmt)
        structure_changed = _skeleton(previous, fmt) != _skeleton(new, fmt)
    except (KeyError, TypeError, IndexError, AttributeError):
        return {"first": False, "structure_changed": True, "changes": {}, "max_change": None}
    changes: dict[str, dict[str, list[float]]] = {}
    biggest = 0.0
    for n in PERIOD_NAMES:
        (ob, os_), (nb, ns) = old[n], cur[n]
        if ob != nb or os_ != ns:
            changes[n] = {"buy": [ob, nb], "sell": [os_, ns]}
            biggest = max(biggest, abs(nb - ob), abs(ns - os_))
    return {"first": False, "structure_changed": structure_changed, "changes": changes, "max_change": round(biggest, 6)}


def last_sent(store: HistoryStore, site_id: str, fmt: str) -> tuple[dict[str, Any], str] | None:
    """The last payload that reached the battery (the "last good" one), with its hash."""
    rows = store.query(
        "SELECT payload, payload_hash FROM tariff_payloads WHERE site_id = ? AND format = ? AND sent "
        "ORDER BY created_at DESC LIMIT 1",
        [site_id, fmt],
    )
    if rows.empty:
        return None
    return json.loads(rows.iloc[0]["payload"]), str(rows.iloc[0]["payload_hash"])


def decide(prices: pd.DataFrame, site: SiteConfig, now: pd.Timestamp, fmt: str,
           previous: dict[str, Any] | None, plan: pd.DataFrame | None = None,
           min_change: float = DEFAULT_MIN_CHANGE, max_missing: float = MAX_MISSING_FRACTION) -> SyncDecision:
    """Pure decision: abort on incomplete prices, skip an immaterial change, otherwise upload."""
    prev_hash = payload_hash(previous) if previous is not None else None
    missing = missing_fraction(prices, now, hours=24.0)
    if missing > max_missing:
        return SyncDecision(site.id, fmt, "abort",
                            f"aborted: {missing:.0%} of the next 24 h of prices missing (limit {max_missing:.0%}); "
                            "the last good tariff stays on the battery", None, None, prev_hash, missing)
    try:
        payload = build_payload(fmt, prices, site, now, plan)
    except TariffError as exc:
        return SyncDecision(site.id, fmt, "abort", f"aborted: {exc}", None, None, prev_hash, missing)
    h = payload_hash(payload)
    diff = diff_payloads(previous, payload, fmt)
    if previous is None:
        action, reason = "upload", "no tariff sent before"
    elif h == prev_hash:
        action, reason = "skip", "unchanged"
    elif diff["structure_changed"]:
        action, reason = "upload", "tariff structure changed"
    elif (diff["max_change"] or 0.0) >= min_change:
        action, reason = "upload", (f"{len(diff['changes'])} half hours changed, up to "
                                    f"{diff['max_change']:.4f}/kWh (threshold {min_change:.4f})")
    else:
        action, reason = "skip", (f"change below threshold: up to {diff['max_change']:.4f}/kWh "
                                  f"< {min_change:.4f} in {len(diff['changes'])} half hours")
    return SyncDecision(site.id, fmt, action, reason, payload, h, prev_hash, missing, diff)


Uploader = Callable[[dict[str, Any]], Any]


def sync_tariff(prices: pd.DataFrame, site: SiteConfig, now: pd.Timestamp, store: HistoryStore,
                upload: Uploader | None, fmt: str | None = None, plan: pd.DataFrame | None = None,
                min_change: float = DEFAULT_MIN_CHANGE, force: bool = False) -> SyncDecision:
    """Decide, upload when material (or ``force``), and record the payload with its reply or error.

    ``upload`` receives the payload and returns the device's reply (raising on failure); ``None`` means
    dry-run: the payload is stored as not sent. Upload errors are recorded and returned, not raised, so the
    caller can keep the last good tariff and report.
    """
    fmt = fmt or default_format(site)
    slot = pd.Timestamp(now).tz_convert("UTC").floor(PLANNING_SLOT)
    prev = last_sent(store, site.id, fmt)
    decision = decide(prices, site, now, fmt, prev[0] if prev else None, plan, min_change)
    slot_sent = _slot_sent(store, site.id, fmt, slot)
    if decision.action == "abort":
        if slot_sent:  # a re-run of this slot: the row saying what the battery got stays as it is
            decision.payload_id = payload_slot_id(site.id, fmt, slot)
            return decision
        decision.payload_id = store.record_payload(site.id, fmt, {}, "", False, reply=None, note=decision.reason,
                                                   created_at=now, slot=slot)
        return decision
    if force and decision.action == "skip":
        decision.action, decision.reason = "upload", f"forced ({decision.reason})"
    assert decision.payload is not None and decision.payload_hash is not None
    note = json.dumps({"action": decision.action, "reason": decision.reason,
                       "changed_periods": sorted(decision.diff.get("changes", {})),
                       "max_change": decision.diff.get("max_change")})
    if decision.action == "upload" and upload is not None:
        try:
            decision.reply = upload(decision.payload)
            decision.sent = True
        except Exception as exc:  # device/API errors are data here: recorded, last good kept
            decision.error = f"{type(exc).__name__}: {exc}"
            decision.reason = f"upload failed: {decision.error}"
    if slot_sent and not decision.sent:
        decision.payload_id = payload_slot_id(site.id, fmt, slot)
        return decision
    decision.payload_id = store.record_payload(
        site.id, fmt, decision.payload, decision.payload_hash, decision.sent,
        reply=decision.reply if decision.error is None else {"error": decision.error}, note=note, created_at=now,
        slot=slot,
    )
    return decision


def _slot_sent(store: HistoryStore, site_id: str, fmt: str, slot: pd.Timestamp) -> bool:
    """Whether this slot's row already records a payload the battery accepted. A re-run that does not send
    (skip, abort, failure, dry run) must not overwrite it: "not sent" there would make the next run upload again
    and lose the record of what the battery has."""
    rows = store.query("SELECT sent FROM tariff_payloads WHERE payload_id = ?", [payload_slot_id(site_id, fmt, slot)])
    return not rows.empty and bool(rows.iloc[0]["sent"])
