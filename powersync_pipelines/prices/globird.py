"""Globird / AEMO VPP: a static time-of-use tariff from the site config, with AEMO spike flags.

The owner pays the fixed TOU price whatever the wholesale market does; what matters from AEMO is whether
the regional price crosses the VPP threshold (default $3000/MWh), because that is when the VPP discharges.
So prices come from ``provider.tou`` ($/kWh inc GST, local time) and ``spike_status`` / ``rrp`` from NEMWEB.
"""

from __future__ import annotations

import httpx
import pandas as pd

from ..config import ProviderConfig, SiteConfig
from .aemo import read_wholesale_file, retail_frame_from_wholesale, site_wholesale_rrp
from .errors import PriceDataError
from .http import RetryPolicy
from .quality import check_index
from .tou import tou_prices

PROVIDER = "globird"


def globird_frame(raw: pd.DataFrame, prov: ProviderConfig, tz: str, fetched_at: pd.Timestamp | None = None,
                  source: str = PROVIDER) -> pd.DataFrame:
    """AEMO ``rrp`` frame + the static TOU -> the normalised frame."""
    if not prov.tou:
        raise PriceDataError(source, "tou_missing", "provider.tou has no bands (Globird prices are a static TOU)")
    check_index(raw, source)
    idx = pd.DatetimeIndex(raw.index)
    imp, exp = tou_prices(idx, prov.tou, tz, source)
    return retail_frame_from_wholesale(raw, imp, exp, prov.spike_threshold_per_mwh, source, fetched_at)


def fetch_globird(site: SiteConfig, now: pd.Timestamp, horizon_hours: float = 48, *,
                  client: httpx.Client | None = None, policy: RetryPolicy | None = None,
                  history_hours: float = 0.0, **_: object) -> pd.DataFrame:
    """The registry fetcher for ``kind: globird``."""
    raw = site_wholesale_rrp(site, now, horizon_hours, PROVIDER, client=client, policy=policy,
                             history_hours=history_hours)
    return globird_frame(raw, site.provider, site.timezone, fetched_at=pd.Timestamp(now))


def read_globird_file(path: str, prov: ProviderConfig, tz: str) -> pd.DataFrame:
    """``--file``: any AEMO price file as the spike source, priced with the site's TOU."""
    raw = read_wholesale_file(path, prov.region, PROVIDER)
    return globird_frame(raw, prov, tz, fetched_at=pd.Timestamp("1970-01-01", tz="UTC"), source="globird_file")
