"""The ``replay`` provider: serves a window of stored history as if it were live.

The demo and tests run on a replay clock inside the shipped file, so they are deterministic. Intervals
after "now" are flagged ``is_forecast`` (the replay is a perfect forecast: it knows the real future).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from ..config import RetailMapping, SiteConfig
from ..paths import resolve_data_path
from .history import PriceFileError, aemo_file_price_frame, read_normalized_csv


@lru_cache(maxsize=8)
def _load(path: str, fmt: str, region: str | None, retail_key: str) -> pd.DataFrame:

    retail = RetailMapping.model_validate_json(retail_key)
    if fmt == "aemo":
        return aemo_file_price_frame(path, retail, region, source="replay")
    return read_normalized_csv(path, source="replay")


def replay_history(site: SiteConfig) -> pd.DataFrame:
    """The whole replay file for a site, as a validated price frame."""
    prov = site.provider
    path = resolve_data_path(prov.file or "", Path(site.base_dir) if site.base_dir else None)
    fmt = prov.format or ("aemo" if "PRICE_AND_DEMAND" in path.name else "normalized")
    return _load(str(path), fmt, prov.region, prov.retail.model_dump_json()).copy()


def replay_window(site: SiteConfig) -> tuple[pd.Timestamp, pd.Timestamp]:
    h = replay_history(site)
    return h.index[0], h.index[-1] + pd.Timedelta(minutes=5)


def default_replay_now(site: SiteConfig) -> pd.Timestamp:
    """The replay clock's start: ``provider.replay_start`` or one day into the file."""
    if site.provider.replay_start:
        return pd.Timestamp(site.provider.replay_start).tz_convert("UTC").floor("5min")
    start, _ = replay_window(site)
    return start + pd.Timedelta(days=1)


def fetch_replay(site: SiteConfig, now: pd.Timestamp, horizon_hours: float = 48,
                 history_hours: float = 24, **_: object) -> pd.DataFrame:
    """Prices from ``now - history_hours`` to ``now + horizon_hours``; future rows flagged as forecast.

    Extra keyword arguments of live providers (``client``, retry policy) mean nothing to a file and are ignored.
    """
    h = replay_history(site)
    now = now.floor("5min")
    window = h.loc[now - pd.Timedelta(hours=history_hours): now + pd.Timedelta(hours=horizon_hours) - pd.Timedelta(minutes=1)]
    if window.empty or window.index[-1] < now:
        start, end = h.index[0], h.index[-1]
        raise PriceFileError(f"replay: now={now.isoformat()} is outside the replay file ({start} .. {end})")
    window = window.copy()
    window["is_forecast"] = window.index >= now
    window["fetched_at"] = pd.Series(now, index=window.index).astype("datetime64[ns, UTC]")
    return window
