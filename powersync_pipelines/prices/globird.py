"""Globird / AEMO VPP: a static time-of-use tariff from the site config, with AEMO spike flags.

The owner pays the fixed TOU price whatever the wholesale market does; what matters from AEMO is whether
the regional price crosses the VPP threshold (default $3000/MWh), because that is when the VPP discharges.
So prices come from ``provider.tou`` ($/kWh inc GST, local time) and ``spike_status`` / ``rrp`` from NEMWEB.
"""

from __future__ import annotations

import httpx
import pandas as pd

from ..config import ProviderConfig, SiteConfig
from ..schemas import finalize_price_frame
from .aemo import read_wholesale_file, spike_status, wholesale_rrp
from .errors import PriceDataError
from .http import RetryPolicy, base_url
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
    is_fc = raw["is_forecast"] if "is_forecast" in raw else pd.Series(False, index=idx)
    df = pd.DataFrame({
        "import_price": imp,
        "export_price": exp,
        "spike_status": spike_status(raw["rrp"], is_fc, prov.spike_threshold_per_mwh),
        "is_forecast": is_fc.to_numpy(dtype=bool),
        "rrp": raw["rrp"].to_numpy(dtype=float),
    }, index=idx)
    if "provenance" in raw:
        df["provenance"] = raw["provenance"].to_numpy()
    return finalize_price_frame(df, source=source, fetched_at=fetched_at)


def fetch_globird(site: SiteConfig, now: pd.Timestamp, horizon_hours: float = 48, *,
                  client: httpx.Client | None = None, policy: RetryPolicy | None = None,
                  history_hours: float = 0.0, **_: object) -> pd.DataFrame:
    """The registry fetcher for ``kind: globird``."""
    prov = site.provider
    raw = wholesale_rrp(prov.region or "", now, horizon_hours, client=client, base=base_url("aemo", prov.base_url),
                        policy=policy, history_hours=history_hours, provider=PROVIDER,
                        timeout_s=prov.request_timeout_s)
    return globird_frame(raw, prov, site.timezone, fetched_at=pd.Timestamp(now))


def read_globird_file(path: str, prov: ProviderConfig, tz: str) -> pd.DataFrame:
    """``--file``: any AEMO price file as the spike source, priced with the site's TOU."""
    raw = read_wholesale_file(path, prov.region, PROVIDER)
    return globird_frame(raw, prov, tz, fetched_at=pd.Timestamp("1970-01-01", tz="UTC"), source="globird_file")
