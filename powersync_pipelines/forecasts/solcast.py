"""Solcast rooftop-site forecasts: the client, the DuckDB cache and the daily call budget.

Why this shape: a hobbyist key allows 10 calls per UTC day (the quota resets at 00:00 UTC) for at most two
rooftop sites, while the planner replans every 5 minutes, in several processes (Dagster runs, sensors, the
CLI). So every response is cached in DuckDB (``solcast_forecasts``) and the plan reads the cache; every call
is counted in ``solcast_calls`` *before* it is sent, under the store's file lock, so no two processes can
both spend the last call; and a refresh is made only when it is worth one (:func:`decide_refresh`): at once
when the cache does not reach a day ahead, otherwise when the calls left today, shared by the key's rooftop
sites and spread evenly over the daylight left in the UTC day, say one is due. Nothing is fetched at night
while the cache is good.

API (reference/ev-chargers-solcast.md §5): ``GET {base}/rooftop_sites/{id}/forecasts?format=json&hours=N``
with ``Authorization: Bearer KEY`` -> ``{"forecasts": [{"pv_estimate", "pv_estimate10", "pv_estimate90",
"period_end", "period": "PT30M"}, ...]}``: mean kW over the period *ending* at ``period_end`` (UTC). A 429
whose body says ``TooManyRequests`` is the quota; a bare 429 is a busy server. The key never reaches a log
line, an error message or the database (the ledger keeps a 12-hex-digit SHA-256 fingerprint).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import pandas as pd

from ..config import SiteConfig
from ..redaction import excerpt, register, request_secrets, response_excerpt
from ..storage import HistoryStore
from ..timegrid import STEP

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.solcast.com.au"
BASE_URL_ENV = "POWERSYNC_SOLCAST_BASE_URL"
USER_AGENT = "powersync-pipelines/0.1 (solcast rooftop client)"
REQUEST_HOURS = 72  # the 48 h horizon plus a day, so a cache that cannot be refreshed still covers it
COVER_AHEAD = pd.Timedelta(hours=24)  # a cache reaching less far ahead than this is refreshed at once
MIN_SPACING = pd.Timedelta(minutes=30)  # Solcast's periods are 30 min: a sooner call cannot say more
FIRST_BACKOFF = pd.Timedelta(minutes=15)  # after a failed call; doubles per consecutive failure ...
MAX_BACKOFF = pd.Timedelta(hours=4)  # ... up to this
LIVE_CLOCK_SLACK = pd.Timedelta(hours=1)  # a planning clock further than this from the wall is a replay
SHARE_LOOKBACK = pd.Timedelta(days=3)  # rooftop sites seen on a key this recently share its budget
_PERIOD = re.compile(r"^PT(\d+)M$")


class SolcastError(RuntimeError):
    """A Solcast call or payload that cannot be used; ``reason`` is a short code for provenance."""

    def __init__(self, reason: str, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.reason, self.http_status = reason, http_status


# -- parsing and resampling ------------------------------------------------------------------------------


def parse_forecasts(body: Any, where: str = "solcast") -> pd.DataFrame:
    """A rooftop ``/forecasts`` body -> periods indexed by interval start (UTC): ``period_minutes``,
    ``pv_estimate`` (P50), ``pv_estimate10``, ``pv_estimate90`` in kW (P10/P90 NaN when absent)."""
    items = body.get("forecasts") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise SolcastError("malformed", f"{where}: expected an object with a 'forecasts' list")
    if not items:
        raise SolcastError("malformed", f"{where}: 'forecasts' is empty")
    if not all(isinstance(it, dict) for it in items):
        raise SolcastError("malformed", f"{where}: a 'forecasts' entry is not an object")
    raw = pd.DataFrame.from_records(items)
    for key in ("period_end", "pv_estimate"):
        if key not in raw or raw[key].isna().any():
            n = 0 if key not in raw else int(raw[key].isna().to_numpy().nonzero()[0][0])
            raise SolcastError("malformed", f"{where}: forecasts[{n}] has no '{key}'")
    text = raw["period_end"].astype(str)
    naive = ~text.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True)
    if naive.any():
        n = int(naive.to_numpy().nonzero()[0][0])
        raise SolcastError("malformed", f"{where}: forecasts[{n}].period_end {text.iloc[n]!r} has no UTC offset")
    try:
        end = pd.to_datetime(text, utc=True, format="ISO8601")
    except (TypeError, ValueError) as exc:
        raise SolcastError("malformed", f"{where}: period_end: {exc}") from None
    period = raw["period"].fillna("PT30M").astype(str) if "period" in raw else pd.Series("PT30M", index=raw.index)
    minutes = period.str.extract(_PERIOD)[0]
    if minutes.isna().any():
        n = int(minutes.isna().to_numpy().nonzero()[0][0])
        raise SolcastError("malformed", f"{where}: forecasts[{n}].period {period.iloc[n]!r} is not 'PT<n>M'")
    minutes = minutes.astype(int)
    if ((minutes % 5 != 0) | (minutes <= 0) | (minutes > 60)).any():
        raise SolcastError("malformed", f"{where}: periods must be 5-60 minutes on the 5-minute grid")
    values = {}
    for col in ("pv_estimate", "pv_estimate10", "pv_estimate90"):
        v = pd.to_numeric(raw[col], errors="coerce") if col in raw else pd.Series(np.nan, index=raw.index)
        bad = v.isna() & raw[col].notna() if col in raw else pd.Series(False, index=raw.index)
        if bad.any() or (v < 0).any() or np.isinf(v).any():
            n = int((bad | (v < 0) | np.isinf(v)).to_numpy().nonzero()[0][0])
            raise SolcastError("malformed", f"{where}: forecasts[{n}].{col} = {raw[col].iloc[n]!r} is not a kW value")
        values[col] = v.to_numpy(dtype=float)
    start = end - pd.to_timedelta(minutes, unit="min")
    if (start.dt.second != 0).any() or (start.dt.minute % 5 != 0).any():
        raise SolcastError("malformed", f"{where}: periods do not start on 5-minute boundaries")
    df = pd.DataFrame({"period_minutes": minutes.to_numpy(), **values},
                      index=pd.DatetimeIndex(start, name="interval_start")).sort_index()
    if df.index.duplicated().any():
        dup = df.index[df.index.duplicated()][0]
        raise SolcastError("malformed", f"{where}: the period starting {dup.isoformat()} appears twice")
    p10, p50, p90 = df["pv_estimate10"], df["pv_estimate"], df["pv_estimate90"]
    disordered = (p10 > p50 + 1e-3) | (p50 > p90 + 1e-3)
    if disordered.any():
        at = df.index[disordered.to_numpy()][0]
        raise SolcastError("malformed", f"{where}: P10 <= P50 <= P90 does not hold at {at.isoformat()}")
    return df


def to_grid(periods: pd.DataFrame, index: pd.DatetimeIndex) -> pd.DataFrame:
    """Periods held over their 5-minute slots (mean kW is the same in every slot of a period, so energy is
    kept), read at ``index`` (each instant takes the slot it falls in); NaN where no period covers a slot."""
    cols = ["pv_estimate", "pv_estimate10", "pv_estimate90"]
    if periods.empty:
        return pd.DataFrame(np.nan, index=index, columns=cols)
    reps = (periods["period_minutes"].to_numpy() // 5).astype(int)
    starts = np.repeat(pd.DatetimeIndex(periods.index).as_unit("ns").asi8, reps)
    offsets = np.concatenate([np.arange(r) for r in reps]) * STEP.value
    slots = pd.DatetimeIndex(starts + offsets, tz="UTC")
    expanded = pd.DataFrame(np.repeat(periods[cols].to_numpy(dtype=float), reps, axis=0), index=slots, columns=cols)
    expanded = expanded[~expanded.index.duplicated(keep="last")]
    out = expanded.reindex(pd.DatetimeIndex(index).floor("5min"))  # an off-grid instant reads its slot
    out.index = index
    return out


# -- configuration ---------------------------------------------------------------------------------------


def base_url(site: SiteConfig) -> str:
    """The site's ``solar.solcast_base_url`` beats ``$POWERSYNC_SOLCAST_BASE_URL`` beats the public API."""
    configured = site.solar.solcast_base_url if site.solar else None
    return (configured or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


def api_key(site: SiteConfig) -> str | None:
    env = site.solar.solcast_token_env if site.solar else None
    key = os.environ.get(env, "").strip() if env else ""
    register(key)  # masked in every error text and log line from here on
    return key or None


def account_of(key: str) -> str:
    """The ledger's name for a key: 12 hex digits of its SHA-256 (one quota per key, whatever uses it)."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


# -- cache and ledger ------------------------------------------------------------------------------------


def cache_periods(store: HistoryStore, resource_id: str, periods: pd.DataFrame, fetched_at: pd.Timestamp) -> int:
    df = periods.copy()
    df["resource_id"], df["fetched_at"] = resource_id, fetched_at
    return store.upsert("solcast_forecasts", df, ["resource_id", "interval_start"])


def cached_periods(store: HistoryStore, resource_id: str, start: pd.Timestamp, end: pd.Timestamp,
                   fetched_since: pd.Timestamp) -> pd.DataFrame:
    """Cached periods overlapping ``[start, end)`` that were fetched at or after ``fetched_since``."""
    df = store.query(
        "SELECT interval_start, period_minutes, pv_estimate, pv_estimate10, pv_estimate90, fetched_at "
        "FROM solcast_forecasts WHERE resource_id = ? AND interval_start < ? "
        "AND interval_start + period_minutes * INTERVAL '1 minute' > ? AND fetched_at >= ? ORDER BY interval_start",
        [resource_id, end.to_pydatetime(), start.to_pydatetime(), fetched_since.to_pydatetime()])
    df.index = pd.DatetimeIndex(pd.to_datetime(df.pop("interval_start"), utc=True), name="interval_start").as_unit("ns")
    df["fetched_at"] = pd.to_datetime(df["fetched_at"], utc=True).dt.as_unit("ns")
    return df


@dataclass
class Ledger:
    """What the call ledger says about one key and one rooftop resource, as of ``wall``."""

    used_today: int = 0
    quota_exhausted: bool = False  # Solcast answered 429 TooManyRequests today
    rejected: str | None = None  # 401/403 (the key) or 404 (the resource) today: no retry before tomorrow
    last_call_at: pd.Timestamp | None = None  # this resource, any outcome
    last_ok_at: pd.Timestamp | None = None
    failures: int = 0  # consecutive failures of this resource since its last success
    last_failure: str | None = None
    resources: int = 1  # rooftop sites sharing the key's budget


def read_ledger(store: HistoryStore, account: str, resource_id: str, wall: pd.Timestamp,
                own_resources: int = 1) -> Ledger:
    day = wall.tz_convert("UTC").date()
    with store.connect() as con:  # one connection: opening one costs more than these three queries
        today = con.execute("SELECT resource_id, status, reason FROM solcast_calls WHERE account = ? AND utc_day = ?",
                            [account, day]).df()
        mine = con.execute("SELECT requested_at, status, reason FROM solcast_calls WHERE account = ? "
                           "AND resource_id = ? ORDER BY requested_at DESC LIMIT 50", [account, resource_id]).df()
        seen = con.execute("SELECT count(DISTINCT resource_id) FROM solcast_calls WHERE account = ? "
                           "AND requested_at >= ?", [account, (wall - SHARE_LOOKBACK).to_pydatetime()]).fetchone()
    led = Ledger(used_today=len(today), resources=max(int((seen or [0])[0] or 0), own_resources, 1))
    led.quota_exhausted = bool((today["status"] == "quota_exhausted").any())
    rejected = today[(today["status"] == "rejected")
                     & ((today["reason"] != "http_404") | (today["resource_id"] == resource_id))]
    led.rejected = str(rejected["reason"].iloc[0]) if not rejected.empty else None
    if not mine.empty:
        times = pd.to_datetime(mine["requested_at"], utc=True)
        led.last_call_at = times.iloc[0]
        ok = mine["status"] == "ok"
        if ok.any():
            led.last_ok_at = times[ok].iloc[0]
        for status, reason in zip(mine["status"], mine["reason"], strict=True):
            if status == "ok":
                break
            if status != "pending":
                led.failures += 1
                led.last_failure = led.last_failure or str(reason)
    return led


def reserve_call(store: HistoryStore, account: str, resource_id: str, wall: pd.Timestamp, limit: int,
                 seen_last_call: pd.Timestamp | None) -> str | None:
    """Count a call before it is made; None when today's budget is spent or another process has just called
    for this resource (one transaction under the store's file lock, so the check and the count are one step)."""
    call_id = uuid.uuid4().hex
    day = wall.tz_convert("UTC").date()
    with store.connect() as con:
        con.execute("BEGIN")
        used = con.execute("SELECT count(*) FROM solcast_calls WHERE account = ? AND utc_day = ?",
                           [account, day]).fetchone()[0]
        newer = con.execute("SELECT count(*) FROM solcast_calls WHERE account = ? AND resource_id = ? "
                            "AND requested_at > ?",
                            [account, resource_id, (seen_last_call or pd.Timestamp(0, tz="UTC")).to_pydatetime()]
                            ).fetchone()[0]
        if used >= limit or newer:
            con.execute("ROLLBACK")
            return None
        con.execute("INSERT INTO solcast_calls (call_id, account, resource_id, utc_day, requested_at, status) "
                    "VALUES (?, ?, ?, ?, ?, 'pending')", [call_id, account, resource_id, day, wall.to_pydatetime()])
        con.execute("COMMIT")
    return call_id


def finish_call(store: HistoryStore, call_id: str, status: str, reason: str | None = None,
                http_status: int | None = None, periods: int | None = None, error: str | None = None) -> None:
    with store.connect() as con:
        con.execute("UPDATE solcast_calls SET status = ?, reason = ?, http_status = ?, periods = ?, error = ? "
                    "WHERE call_id = ?", [status, reason, http_status, periods, (error or "")[:300] or None, call_id])


# -- when to call ----------------------------------------------------------------------------------------


def daylight(lat: float, lon: float, start: pd.Timestamp, end: pd.Timestamp) -> tuple[bool, pd.Timedelta]:
    """(is the sun up at ``start``, hours of sun between ``start`` and ``end``), sampled every 10 minutes."""
    if end <= start:
        return False, pd.Timedelta(0)
    import pvlib

    times = pd.date_range(start, end, freq="10min", inclusive="left")
    elevation = pvlib.solarposition.get_solarposition(times, lat, lon)["apparent_elevation"].to_numpy()
    up = elevation > 0
    return bool(up[0]), pd.Timedelta(minutes=10) * int(up.sum())


@dataclass(frozen=True)
class RefreshDecision:
    call: bool
    why: str  # no_cache | cache_short | due | not_due | night | budget_spent | quota_exhausted | rejected | backoff


def decide_refresh(*, wall: pd.Timestamp, covered_until: pd.Timestamp | None, ledger: Ledger, limit: int,
                   sun_up: bool, daylight_left: pd.Timedelta) -> RefreshDecision:
    """Whether to call Solcast now for one rooftop resource.

    Never over budget, never after the key or resource was refused today, not during a failure's backoff.
    Otherwise: at once when the cache does not reach ``COVER_AHEAD``; else, in daylight only, when
    (daylight left in the UTC day) / (calls left for this resource) has passed since its last good call.
    """
    calls_left = limit - ledger.used_today
    if ledger.rejected:
        return RefreshDecision(False, "rejected")
    if ledger.quota_exhausted:
        return RefreshDecision(False, "quota_exhausted")
    if calls_left <= 0:
        return RefreshDecision(False, "budget_spent")
    if ledger.failures and ledger.last_call_at is not None:
        wait = min(FIRST_BACKOFF * 2 ** (ledger.failures - 1), MAX_BACKOFF)
        if wall < ledger.last_call_at + wait:
            return RefreshDecision(False, "backoff")
    if covered_until is None:
        return RefreshDecision(True, "no_cache")
    if covered_until < wall + COVER_AHEAD:
        return RefreshDecision(True, "cache_short")
    if not sun_up:
        return RefreshDecision(False, "night")
    share = calls_left / max(ledger.resources, 1)
    if share < 1:
        return RefreshDecision(False, "not_due")
    spacing = max(MIN_SPACING, daylight_left / share)
    if ledger.last_ok_at is None or wall - ledger.last_ok_at >= spacing:
        return RefreshDecision(True, "due")
    return RefreshDecision(False, "not_due")


# -- the call ----------------------------------------------------------------------------------------------


def fetch_rooftop(client: httpx.Client, base: str, resource_id: str, key: str,
                  hours: int = REQUEST_HOURS) -> pd.DataFrame:
    """One ``/rooftop_sites/{id}/forecasts`` call, parsed; raises ``SolcastError`` with a reason code."""
    url = f"{base}/rooftop_sites/{resource_id}/forecasts"
    where = f"Solcast {base}/rooftop_sites/{resource_id}"
    try:
        r = client.get(url, params={"format": "json", "hours": hours},
                       headers={"Authorization": f"Bearer {key}", "Accept": "application/json",
                                "User-Agent": USER_AGENT})
    except httpx.TimeoutException as exc:
        raise SolcastError("timeout", f"{where}: timed out ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        raise SolcastError("unreachable", f"{where}: cannot connect ({type(exc).__name__})") from None
    if r.status_code == 429:
        code = _error_code(r)
        if code == "TooManyRequests":
            raise SolcastError("quota_exhausted", f"{where}: HTTP 429 TooManyRequests (the day's quota is spent)", 429)
        raise SolcastError("http_429", f"{where}: HTTP 429 (server busy)", 429)
    if r.status_code in (401, 403):
        raise SolcastError(f"http_{r.status_code}", f"{where}: HTTP {r.status_code}: the API key was refused", r.status_code)
    if r.status_code >= 400:
        raise SolcastError(f"http_{r.status_code}", f"{where}: HTTP {r.status_code} {_error_text(r)}", r.status_code)
    head = r.content[:512].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html")) or "text/html" in r.headers.get("content-type", ""):
        raise SolcastError("malformed", f"{where}: answered an HTML page, not JSON", r.status_code)
    try:
        body = json.loads(r.content)
    except ValueError as exc:
        raise SolcastError("malformed", f"{where}: not JSON ({exc})", r.status_code) from None
    return parse_forecasts(body, where)


def _error_code(r: httpx.Response) -> str | None:
    try:
        body = r.json()
    except ValueError:
        return None
    status = body.get("response_status") if isinstance(body, dict) else None
    return str(status.get("error_code")) if isinstance(status, dict) and status.get("error_code") else None


def _error_text(r: httpx.Response) -> str:
    """The server's message, redacted: an echoing server may send the API key back."""
    try:
        body = r.json()
    except ValueError:
        return repr(response_excerpt(r, 120))
    status = body.get("response_status") if isinstance(body, dict) else None
    if isinstance(status, dict):
        try:
            sent = request_secrets(r.request)
        except RuntimeError:  # a reply built without its request
            sent = []
        return excerpt(status.get("message") or status.get("error_code") or "", 160, extra=sent)
    return ""


_STATUS_OF = {"quota_exhausted": "quota_exhausted", "http_401": "rejected", "http_403": "rejected",
              "http_404": "rejected"}


# -- one cycle -------------------------------------------------------------------------------------------


@dataclass
class SolcastOutcome:
    """The Solcast side of one solar forecast: the summed P50/P10/P90 on the requested index (NaN where the
    cache has nothing usable) and what happened on the way."""

    grid: pd.DataFrame
    reason: str | None = None  # why Solcast could not serve (key_missing, budget_spent, http_500, ...)
    detail: str = ""
    refresh_error: str | None = None  # a refresh failed but the cache still served
    calls: list[dict[str, Any]] = field(default_factory=list)
    fetched_at: pd.Timestamp | None = None  # the oldest response the served values come from
    calls_today: int | None = None
    daily_limit: int | None = None

    @property
    def call_made(self) -> bool:
        return bool(self.calls)


def solcast_forecast(site: SiteConfig, index: pd.DatetimeIndex, store: HistoryStore | None, now: pd.Timestamp,
                     *, wall_now: pd.Timestamp | None = None, client: httpx.Client | None = None,
                     refresh: bool = True) -> SolcastOutcome:
    """Solcast's forecast for ``index`` from the cache, refreshed first when :func:`decide_refresh` says so.

    ``now`` is the planning instant; ``wall_now`` (default: the clock) is what the quota counts in. A planning
    clock far from the wall clock (a replay) never calls: Solcast only knows the present.
    """
    empty = pd.DataFrame(np.nan, index=index, columns=["pv_estimate", "pv_estimate10", "pv_estimate90"])
    solar = site.solar
    resources = solar.solcast_resources if solar else []
    if not resources:
        return SolcastOutcome(empty, "not_configured", "no solar.solcast_resource_id")
    key = api_key(site)
    if key is None:
        return SolcastOutcome(empty, "key_missing", f"environment variable {solar.solcast_token_env} is not set")
    if store is None:
        return SolcastOutcome(empty, "no_store", "no history store to cache responses and count calls in")
    wall = pd.Timestamp(wall_now if wall_now is not None else pd.Timestamp.now(tz="UTC")).tz_convert("UTC")
    now = pd.Timestamp(now).tz_convert("UTC")
    account = account_of(key)
    live = abs(wall - now) <= LIVE_CLOCK_SLACK
    out = SolcastOutcome(empty, daily_limit=solar.solcast_daily_limit)
    since = wall - pd.Timedelta(hours=solar.solcast_max_age_hours)
    not_live = refresh and not live
    http: list[httpx.Client] = [client] if client is not None else []

    def get_client() -> httpx.Client:  # made only when a call is due (most cycles make none)
        if not http:
            http.append(_client(site))
        return http[0]

    grids, fetched = [], []
    try:
        if refresh and live:
            for rid in resources:
                _maybe_refresh(site, rid, key, account, wall, now, since, store, get_client, out, len(resources))
        for rid in resources:
            cached = cached_periods(store, rid, index[0], index[-1] + STEP, since)
            grids.append(to_grid(cached.drop(columns="fetched_at"), index))
            if not cached.empty:
                fetched.append(cached["fetched_at"].min())
    finally:
        if client is None and http:
            http[0].close()
    total = grids[0]
    for g in grids[1:]:
        total = total + g  # a slot some array lacks stays NaN: a partial sum would understate the roof
    out.grid = total
    out.fetched_at = min(fetched) if fetched else None
    if out.calls_today is None:
        out.calls_today = read_ledger(store, account, resources[0], wall).used_today
    if total["pv_estimate"].isna().all():
        failed = [c for c in out.calls if c["status"] != "ok"]
        if failed:
            out.reason, out.detail = failed[-1]["reason"], failed[-1]["error"]
        elif not_live:
            out.reason = "clock_not_live"
            out.detail = f"planning clock {now.isoformat()} is not the wall clock: Solcast only forecasts from now"
        else:
            out.reason = out.reason or "no_coverage"
            out.detail = out.detail or "the cache holds no Solcast forecast for this horizon"
    return out


def _client(site: SiteConfig) -> httpx.Client:
    timeout = site.solar.solcast_timeout_s if site.solar else 20.0
    return httpx.Client(timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)), follow_redirects=True)


def _maybe_refresh(site: SiteConfig, rid: str, key: str, account: str, wall: pd.Timestamp, now: pd.Timestamp,
                   since: pd.Timestamp, store: HistoryStore, get_client: Callable[[], httpx.Client],
                   out: SolcastOutcome, own_resources: int) -> None:
    solar = site.solar
    assert solar is not None
    ledger = read_ledger(store, account, rid, wall, own_resources)
    out.calls_today = ledger.used_today  # includes the calls this cycle already made for other arrays
    cached = cached_periods(store, rid, now, now + pd.Timedelta(days=30), since)
    covered_until = None
    if not cached.empty and cached.index[0] <= now:
        covered_until = cached.index[-1] + pd.Timedelta(minutes=int(cached["period_minutes"].iloc[-1]))
    lat, lon = site.location
    midnight = wall.tz_convert("UTC").normalize() + pd.Timedelta(days=1)
    sun_up, left = daylight(lat, lon, wall, midnight)
    decision = decide_refresh(wall=wall, covered_until=covered_until, ledger=ledger, limit=solar.solcast_daily_limit,
                              sun_up=sun_up, daylight_left=left)
    if not decision.call:
        if covered_until is None:  # nothing to serve: say why nothing was fetched
            out.reason = {"budget_spent": "budget_spent", "quota_exhausted": "quota_exhausted",
                          "rejected": ledger.rejected or "rejected", "backoff": "backoff"}.get(decision.why, decision.why)
            out.detail = _not_called(decision.why, ledger, solar.solcast_daily_limit)
        return
    call_id = reserve_call(store, account, rid, wall, solar.solcast_daily_limit, ledger.last_call_at)
    if call_id is None:  # the budget went, or another process called a moment ago
        if covered_until is None:
            out.reason, out.detail = "budget_spent", f"{solar.solcast_daily_limit} calls already made today (UTC)"
        return
    out.calls_today += 1
    try:
        periods = fetch_rooftop(get_client(), base_url(site), rid, key)
    except SolcastError as exc:
        status = _STATUS_OF.get(exc.reason, "failed")
        finish_call(store, call_id, status, exc.reason, exc.http_status, error=str(exc))
        log.warning("solar forecast for site %s: %s", site.id, exc)
        out.calls.append({"resource_id": rid, "status": status, "reason": exc.reason, "error": str(exc)})
        out.refresh_error = exc.reason
        return
    cache_periods(store, rid, periods, wall)
    finish_call(store, call_id, "ok", decision.why, 200, periods=len(periods))
    out.calls.append({"resource_id": rid, "status": "ok", "reason": decision.why, "error": "",
                      "periods": len(periods)})


def _not_called(why: str, ledger: Ledger, limit: int) -> str:
    if why == "budget_spent":
        return f"all {limit} Solcast calls of today (UTC) are spent"
    if why == "quota_exhausted":
        return "Solcast answered 429 TooManyRequests today: the key's quota is spent until 00:00 UTC"
    if why == "rejected":
        return f"Solcast refused this key or resource today ({ledger.rejected}); fix the key or id"
    if why == "backoff":
        return f"waiting after {ledger.failures} failed call(s) (last: {ledger.last_failure})"
    return why


def cached_p50(site: SiteConfig, index: pd.DatetimeIndex, store: HistoryStore | None,
               wall_now: pd.Timestamp | None = None) -> pd.Series:
    """What Solcast predicted (P50, summed over the site's arrays) for ``index`` per the cache; no call is made.
    The nowcast compares this with what was measured over the last half hour."""
    if store is None or site.solar is None or not site.solar.solcast_resources or len(index) == 0:
        return pd.Series(np.nan, index=index)
    wall = pd.Timestamp(wall_now if wall_now is not None else pd.Timestamp.now(tz="UTC")).tz_convert("UTC")
    since = wall - pd.Timedelta(hours=site.solar.solcast_max_age_hours + 1)
    total = None
    for rid in site.solar.solcast_resources:
        g = to_grid(cached_periods(store, rid, index[0], index[-1] + STEP, since).drop(columns="fetched_at"), index)
        total = g["pv_estimate"] if total is None else total + g["pv_estimate"]
    assert total is not None
    return total
