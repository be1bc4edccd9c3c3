"""Keep the last good frame: a provider outage must not leave the battery without prices (SPEC §3, §14).

``fetch_with_fallback`` fetches, checks (gaps filled and flagged, a clock off by an hour against what is
stored), stores (and archives the forecast intervals as published, ``archive.py``), and on *any* failure serves the last good stored frame with its age and the reason. Past
``stale_after_minutes`` it says so, and the caller falls back to self-consumption.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from ..config import SiteConfig
from .archive import archive_published
from .errors import PriceDataError
from .quality import TARIFF_SYNC_MAX_MISSING, apply_gap_policy, check_hour_shift, gap_report, native_step
from .registry import PROVIDERS, UnknownProviderError


class PriceStore(Protocol):
    def upsert(self, table: str, df: pd.DataFrame, keys: list[str]) -> int: ...
    def upsert_prices(self, site_id: str, frame: pd.DataFrame) -> int: ...
    def read_prices(self, site_id: str, start: pd.Timestamp | None = None,
                    end: pd.Timestamp | None = None) -> pd.DataFrame: ...


@dataclass(frozen=True)
class FetchStatus:
    """What happened, in a form an asset check and a log line can both use."""

    site_id: str
    provider: str
    source: str                 # live | last_good | none
    stale: bool                 # True: do not plan on these prices; fall back to self-consumption
    error: str | None = None    # the provider error, when there was one
    problem: str | None = None  # PriceDataError.problem (token_invalid, timeout, ...) or the exception type
    age_minutes: float | None = None   # of the served frame (now - its fetched_at)
    rows_stored: int = 0
    missing_fraction_24h: float = 1.0
    filled_intervals: int = 0
    warnings: tuple[str, ...] = ()  # long gaps and other data-quality notes on the served frame

    @property
    def ok(self) -> bool:
        return self.source == "live"

    @property
    def tariff_sync_allowed(self) -> bool:
        """More than 10% missing in the next 24 h (or stale prices) stops the tariff sync."""
        return not self.stale and self.missing_fraction_24h <= TARIFF_SYNC_MAX_MISSING

    @property
    def message(self) -> str:
        if self.source == "live":
            gaps = [w for w in self.warnings if "no prices for" in w]
            tail = f"; {len(gaps)} long gap(s), first: {gaps[0].split(': ', 1)[-1]}" if gaps else ""
            return (f"{self.provider}: live prices stored ({self.rows_stored} rows, "
                    f"{self.missing_fraction_24h:.0%} missing in the next 24 h, {self.filled_intervals} filled{tail})")
        age = f"{self.age_minutes:.0f} min old" if self.age_minutes is not None else "none stored"
        what = "STALE, falling back to self-consumption" if self.stale else "using the last good frame"
        return f"{self.provider}: {self.error} -> {what} ({age})"


def _default_fetcher(site: SiteConfig) -> Callable[..., pd.DataFrame]:

    try:
        return PROVIDERS[site.provider.kind]
    except KeyError:
        raise UnknownProviderError(f"site {site.id!r}: price provider {site.provider.kind!r} is not implemented") from None


def last_good(site: SiteConfig, now: pd.Timestamp, store: PriceStore, horizon_hours: float = 48,
              history_hours: float = 24) -> tuple[pd.DataFrame, float | None]:
    """Stored prices around ``now`` and their age in minutes (None when nothing useful is stored)."""
    frame = store.read_prices(site.id, start=now - pd.Timedelta(hours=history_hours),
                              end=now + pd.Timedelta(hours=horizon_hours))
    if frame.empty or frame.index.max() < now.floor("30min"):
        return frame, None
    age = (now - frame["fetched_at"].max()).total_seconds() / 60.0
    return frame, age


def fetch_with_fallback(site: SiteConfig, now: pd.Timestamp, store: PriceStore, *,
                        fetcher: Callable[..., pd.DataFrame] | None = None, horizon_hours: float = 48,
                        **kwargs: Any) -> tuple[pd.DataFrame, FetchStatus]:
    """Fetch + check + store; on any error, the last good stored frame with its age and the reason."""
    now = pd.Timestamp(now).tz_convert("UTC")
    kind = site.provider.kind
    fetch = fetcher or _default_fetcher(site)
    try:
        frame = fetch(site, now, horizon_hours=horizon_hours, **kwargs)
        if frame.empty:
            raise PriceDataError(kind, "empty_frame", "the provider returned no intervals")
        # gaps are kept (flagged and reported): the tariff sync, not the store, refuses a horizon that is too gappy
        frame = apply_gap_policy(frame, kind, max_missing=1.0)
        step = native_step(frame.index)
        stored = store.read_prices(site.id, start=frame.index[0] - pd.Timedelta(hours=1),
                                   end=frame.index[-1] + step + pd.Timedelta(hours=1))
        check_hour_shift(frame, stored, kind)
        rows = store.upsert_prices(site.id, frame)
        archive_published(store, site.id, frame)  # the forecasts as published, before the next fetch replaces them
    except Exception as exc:  # noqa: BLE001 - any provider failure keeps the last good frame
        problem = exc.problem if isinstance(exc, PriceDataError) else type(exc).__name__
        old, age = last_good(site, now, store, horizon_hours)
        stale = age is None or age > site.provider.stale_after_minutes
        report = gap_report(old, now) if not old.empty else None
        status = FetchStatus(
            site_id=site.id, provider=kind, source="none" if age is None else "last_good", stale=stale,
            error=str(exc), problem=problem, age_minutes=age,
            missing_fraction_24h=report.missing_fraction if report else 1.0,
        )
        return old, status
    report = gap_report(frame, now)
    return frame, FetchStatus(
        site_id=site.id, provider=kind, source="live", stale=False, age_minutes=0.0, rows_stored=rows,
        missing_fraction_24h=report.missing_fraction, filled_intervals=int(frame["filled"].sum()),
        warnings=tuple(frame.attrs.get("warnings", [])),
    )
