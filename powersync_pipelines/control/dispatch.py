"""Where the spike watch gets "the region's current dispatch price".

Live sites poll NEMWEB's DispatchIS folder: one listing request per tick, and the newest report is downloaded
only when its file name is new (a new name is a new dispatch interval), so a one-minute poll costs one small
request most of the time. All regions come from the same file, so several sites share one fetch.

Replay sites (the demo) map the replay file's RRP at the site's replay clock onto the current wall-clock
interval, under their own region key (``VIC1/replay``) so replayed prices never mix with real ones.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import httpx
import pandas as pd

from ..config import SiteConfig
from ..prices import nemweb
from ..prices.errors import PriceDataError
from ..prices.http import RetryPolicy, base_url, make_client, request
from ..prices.replay import replay_history
from .clock import Clock
from .spike import DispatchPrice, watch_region

# The spike path cannot wait out a long backoff: one quick retry, then try again on the next tick.
FAST_POLICY = RetryPolicy(attempts=2, backoff_s=0.5, max_delay_s=1.0)


@dataclass(frozen=True)
class PriceSource:
    """How one site's price is obtained: ``nemweb`` at ``base`` or ``replay``."""

    kind: str
    region: str
    base: str | None = None

    @property
    def key(self) -> str:
        return self.region if self.kind == "nemweb" else f"{self.region}/replay"


def source_for(site: SiteConfig) -> PriceSource | None:
    region = watch_region(site)
    if region is None:
        return None
    if site.provider.kind == "replay":
        return PriceSource("replay", region)
    configured = site.provider.base_url if site.provider.kind == "aemo" else None
    return PriceSource("nemweb", region, base_url("aemo", configured))


@dataclass
class _Cached:
    name: str
    tables: dict[str, pd.DataFrame]


@dataclass
class NemwebPoller:
    """Latest DISPATCHIS prices, cached by file name (the sensor process keeps one poller per base URL)."""

    base: str
    timeout_s: float = 8.0
    _cache: _Cached | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def latest(self, regions: list[str], client: httpx.Client | None = None,
               now: pd.Timestamp | None = None) -> dict[str, DispatchPrice]:
        """The newest dispatch interval's price for each region; raises ``PriceDataError`` on a bad feed."""
        own = client is None
        client = client or make_client(timeout_s=self.timeout_s, connect_timeout_s=3.0)
        try:
            folder = f"{self.base}{nemweb.FOLDERS['dispatch']}"
            listing = request(client, "aemo", "GET", folder, policy=FAST_POLICY)
            newest = nemweb.parse_listing(listing.text, "dispatch")[-1]
            with self._lock:
                cached = self._cache if self._cache is not None and self._cache.name == newest.name else None
            if cached is None:
                resp = request(client, "aemo", "GET", str(httpx.URL(folder).join(newest.href)), policy=FAST_POLICY)
                text = nemweb.unzip_report(resp.content, newest.name)
                cached = _Cached(newest.name, nemweb.parse_cid(text, newest.name))
                with self._lock:
                    self._cache = cached
        finally:
            if own:
                client.close()
        seen = now or pd.Timestamp.now(tz="UTC")
        out: dict[str, DispatchPrice] = {}
        for region in regions:
            frame = nemweb.dispatch_prices(cached.tables, region, cached.name)
            last = frame.index[-1]
            out[region] = DispatchPrice(region=region, interval_start=last, rrp=float(frame["rrp"].iloc[-1]),
                                        source=cached.name, seen_at=seen)
        return out


_pollers: dict[str, NemwebPoller] = {}
_pollers_lock = threading.Lock()


def poller(base: str) -> NemwebPoller:
    with _pollers_lock:
        if base not in _pollers:
            _pollers[base] = NemwebPoller(base)
        return _pollers[base]


def replay_price(site: SiteConfig, wall_now: pd.Timestamp, clock: Clock) -> DispatchPrice:
    """The replay file's RRP at the site's replay clock, stamped on the current wall-clock interval."""
    at = clock.site_now(site, wall_now)
    hist = replay_history(site)
    if "rrp" not in hist or hist["rrp"].isna().all():
        raise PriceDataError("replay", "no_rrp", f"site {site.id!r}: the replay file has no RRP column")
    rrp = hist["rrp"].loc[:at].dropna()
    if rrp.empty:
        raise PriceDataError("replay", "outside_file", f"site {site.id!r}: replay clock {at} is before the file")
    return DispatchPrice(region=f"{site.provider.region}/replay", interval_start=wall_now.floor("5min"),
                         rrp=float(rrp.iloc[-1]), source=f"replay@{rrp.index[-1].isoformat()}", seen_at=wall_now)


def current_prices(sites: list[SiteConfig], now: pd.Timestamp, clock: Clock,
                   client: httpx.Client | None = None) -> tuple[dict[str, DispatchPrice], dict[str, str]]:
    """Prices keyed by ``PriceSource.key`` for every watched site, plus an error text per key that failed."""
    prices: dict[str, DispatchPrice] = {}
    errors: dict[str, str] = {}
    by_base: dict[str, set[str]] = {}
    for site in sites:
        src = source_for(site)
        if src is None:
            continue
        if src.kind == "replay":
            try:
                prices[src.key] = replay_price(site, now, clock)
            except (PriceDataError, LookupError, ValueError) as exc:
                errors[src.key] = str(exc)
        else:
            by_base.setdefault(src.base or "", set()).add(src.region)
    for base, regions in by_base.items():
        try:
            prices.update(poller(base).latest(sorted(regions), client=client, now=now))
        except (PriceDataError, httpx.HTTPError) as exc:
            for r in regions:
                errors[r] = str(exc)
    return prices, errors
