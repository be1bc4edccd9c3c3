"""Flow Power: AEMO wholesale passed through, plus the network tariff and the retailer's margin, with export
paid only in the evening "happy hour".

The wholesale price comes from NEMWEB, or, when the site configures an Amber token (``provider.token_env``;
``wholesale_source: auto`` or ``amber``), from Amber's API as the original offers: Amber's ``spotPerKwh`` is
the regional RRP in c/kWh inc GST (RRP / 10 x 1.1), with Amber's own forecast ahead, so RRP = spot x 1000 /
1.1. Under ``auto`` an Amber failure falls back to NEMWEB (the frame's ``source`` says which fed it).

GST handling (explicit, SPEC §3): ``network_tariff`` bands and ``margin_per_kwh`` are $/kWh **ex-GST** (as
distributors publish them); the site's ``retail.gst`` is applied once to wholesale + network + margin.
Without ``network_tariff`` bands, the flat ``retail.network_adder_per_kwh`` stands in. Export is
``happy_hour_export_per_kwh`` inside ``happy_hour_start``-``happy_hour_end`` local time and 0 outside, as on
the plan (no GST on export credits for households).
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from ..config import ProviderConfig, SiteConfig
from .aemo import read_wholesale_file, retail_frame_from_wholesale, site_wholesale_rrp
from .amber import fetch_amber, parse_amber_prices
from .errors import PriceDataError
from .http import RetryPolicy, base_url, parse_json_bytes
from .quality import check_index, check_price_unit
from .tou import in_window, tou_prices

log = logging.getLogger(__name__)
PROVIDER = "flow_power"
SOURCE_AMBER = "flow_power_amber"
AMBER_GST = 0.10  # Amber adds GST to the spot price it publishes


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


def uses_amber(prov: ProviderConfig) -> bool:
    """Whether the wholesale price comes from Amber (an Amber token is configured, or Amber is chosen)."""
    return prov.wholesale_source == "amber" or (prov.wholesale_source == "auto" and bool(prov.token_env))


def rrp_from_amber(frame: pd.DataFrame) -> pd.DataFrame:
    """An Amber price frame -> the wholesale frame (``rrp`` $/MWh ex GST, ``is_forecast``, ``provenance``)."""
    spot = frame["spot_price"] if "spot_price" in frame else pd.Series(np.nan, index=frame.index)
    if spot.isna().any():
        first = frame.index[spot.isna().to_numpy()][0]
        raise PriceDataError(PROVIDER, "missing_spot_price",
                             f"Amber: {int(spot.isna().sum())} interval(s) without spotPerKwh, first at {first.isoformat()}")
    raw = pd.DataFrame({"rrp": spot.to_numpy(dtype=float) * 1000.0 / (1.0 + AMBER_GST),
                        "is_forecast": frame["is_forecast"].to_numpy(dtype=bool),
                        "provenance": ("amber_" + frame["provenance"].astype(str)).to_numpy()},
                       index=pd.DatetimeIndex(frame.index, name="interval_start"))
    raw.attrs.update(frame.attrs)
    return raw


def amber_wholesale_rrp(site: SiteConfig, now: pd.Timestamp, horizon_hours: float, *,
                        client: httpx.Client | None = None, policy: RetryPolicy | None = None,
                        history_hours: float = 0.0) -> pd.DataFrame:
    """Wholesale RRP for the site's Amber account, from ``/sites/{id}/prices/current`` (general channel)."""
    prov = site.provider
    frame = fetch_amber(site, now, horizon_hours, client=client, policy=policy, history_hours=history_hours,
                        base=base_url("amber", prov.amber_base_url))
    return rrp_from_amber(frame)


def fetch_flow_power(site: SiteConfig, now: pd.Timestamp, horizon_hours: float = 48, *,
                     client: httpx.Client | None = None, policy: RetryPolicy | None = None,
                     history_hours: float = 0.0, **_: object) -> pd.DataFrame:
    """The registry fetcher for ``kind: flow_power`` (wholesale from Amber when configured, else NEMWEB)."""
    prov, fetched = site.provider, pd.Timestamp(now)
    fallback = None
    if uses_amber(prov):
        try:
            raw = amber_wholesale_rrp(site, now, horizon_hours, client=client, policy=policy,
                                      history_hours=history_hours)
            return flow_power_frame(raw, prov, site.timezone, fetched_at=fetched, source=SOURCE_AMBER)
        except PriceDataError as exc:
            if prov.wholesale_source == "amber":
                raise
            fallback = f"Amber unavailable ({exc}); wholesale from NEMWEB"
            log.warning("site %s: %s", site.id, fallback)
    raw = site_wholesale_rrp(site, now, horizon_hours, PROVIDER, client=client, policy=policy,
                             history_hours=history_hours)
    frame = flow_power_frame(raw, prov, site.timezone, fetched_at=fetched)
    if fallback:
        frame.attrs["wholesale_fallback"] = fallback
        frame.attrs.setdefault("warnings", []).append(fallback)
    return frame


def read_flow_power_file(path: str, prov: ProviderConfig, tz: str) -> pd.DataFrame:
    """``--file``: any AEMO price file, or a saved Amber ``/prices`` JSON array, priced as Flow Power bills."""
    epoch = pd.Timestamp("1970-01-01", tz="UTC")
    if Path(path).suffix.lower() == ".json":
        items = parse_json_bytes(Path(path).read_bytes(), PROVIDER, Path(path).name)
        raw = rrp_from_amber(parse_amber_prices(items, fetched_at=epoch, provider=PROVIDER))
        return flow_power_frame(raw, prov, tz, fetched_at=epoch, source="flow_power_amber_file")
    raw = read_wholesale_file(path, prov.region, PROVIDER)
    return flow_power_frame(raw, prov, tz, fetched_at=epoch, source="flow_power_file")
