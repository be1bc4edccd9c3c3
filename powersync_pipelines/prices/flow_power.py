"""Flow Power: AEMO wholesale passed through, plus the network tariff and the retailer's margin, with export
paid only in the evening "happy hour".

GST handling (explicit, SPEC §3): ``network_tariff`` bands and ``margin_per_kwh`` are $/kWh **ex-GST** (as
distributors publish them); the site's ``retail.gst`` is applied once to wholesale + network + margin.
Without ``network_tariff`` bands, the flat ``retail.network_adder_per_kwh`` stands in. Export is
``happy_hour_export_per_kwh`` inside ``happy_hour_start``-``happy_hour_end`` local time and 0 outside, as on
the plan (no GST on export credits for households).
"""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd

from ..config import ProviderConfig, SiteConfig
from .aemo import read_wholesale_file, retail_frame_from_wholesale, site_wholesale_rrp
from .http import RetryPolicy
from .quality import check_index, check_price_unit
from .tou import in_window, tou_prices

PROVIDER = "flow_power"


def flow_power_frame(raw: pd.DataFrame, prov: ProviderConfig, tz: str, fetched_at: pd.Timestamp | None = None,
                     source: str = PROVIDER) -> pd.DataFrame:
    """Wholesale ``rrp`` frame -> Flow Power import/export prices ($/kWh inc GST)."""
    check_index(raw, source)
    check_price_unit(raw["rrp"], "$/MWh", source, "RRP values")
    idx = pd.DatetimeIndex(raw.index)
    if prov.network_tariff:
        network, _ = tou_prices(idx, prov.network_tariff, tz, source, "network_tariff")
    else:
        network = np.full(len(idx), prov.retail.network_adder_per_kwh)
    wholesale = raw["rrp"].to_numpy(dtype=float) / 1000.0
    imp = (wholesale + network + prov.margin_per_kwh) * (1.0 + prov.retail.gst)
    happy = in_window(idx, prov.happy_hour_start, prov.happy_hour_end, tz)
    exp = np.where(happy, prov.happy_hour_export_per_kwh, 0.0)
    return retail_frame_from_wholesale(raw, imp, exp, prov.spike_threshold_per_mwh, source, fetched_at,
                                       happy_hour=happy)


def fetch_flow_power(site: SiteConfig, now: pd.Timestamp, horizon_hours: float = 48, *,
                     client: httpx.Client | None = None, policy: RetryPolicy | None = None,
                     history_hours: float = 0.0, **_: object) -> pd.DataFrame:
    """The registry fetcher for ``kind: flow_power`` (wholesale from NEMWEB)."""
    raw = site_wholesale_rrp(site, now, horizon_hours, PROVIDER, client=client, policy=policy,
                             history_hours=history_hours)
    return flow_power_frame(raw, site.provider, site.timezone, fetched_at=pd.Timestamp(now))


def read_flow_power_file(path: str, prov: ProviderConfig, tz: str) -> pd.DataFrame:
    """``--file``: any AEMO price file, priced as Flow Power would bill it."""
    raw = read_wholesale_file(path, prov.region, PROVIDER)
    return flow_power_frame(raw, prov, tz, fetched_at=pd.Timestamp("1970-01-01", tz="UTC"), source="flow_power_file")
