"""Builders for tariff tests: sites from real-shaped YAML dicts and price frames whose values encode time."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from powersync_pipelines.config import SiteConfig, parse_sites
from powersync_pipelines.schemas import finalize_price_frame

STEP = 0.001  # $/kWh per 5-minute step since the frame start: a half hour's mean identifies its real start


def make_site(timezone: str = "Australia/Sydney", provider: dict[str, Any] | None = None,
              battery_kind: str = "tesla", features: dict[str, Any] | None = None, **extra: Any) -> SiteConfig:
    battery: dict[str, Any] = {"kind": battery_kind, "capacity_kwh": 13.5, "max_charge_kw": 5.0,
                               "max_discharge_kw": 5.0}
    if battery_kind in ("sungrow_sh", "sigenergy"):
        battery.update(host="127.0.0.1", port=1502)
    if battery_kind == "tesla":
        battery["token_env"] = "TESLA_TOKEN"
    site = {
        "id": "t1", "timezone": timezone, "country": "UK" if timezone.startswith("Europe") else "AU",
        "provider": provider or {"kind": "amber", "site_id": "01ABC", "token_env": "AMBER_TOKEN"},
        "battery": battery, "features": features or {"spike_protection": False}, **extra,
    }
    return parse_sites({"sites": [site]}, "test-sites.yaml").sites[0]


def encoded_prices(start: pd.Timestamp, hours: float, freq: str = "5min", spike: dict[pd.Timestamp, str] | None = None,
                   export_ratio: float = 0.5) -> pd.DataFrame:
    """A valid price frame where import = STEP × (5-min steps since ``start``), export = import × ``export_ratio``."""
    idx = pd.date_range(start, start + pd.Timedelta(hours=hours), freq=freq, inclusive="left", tz="UTC")
    steps = ((idx - start) / pd.Timedelta(minutes=5)).to_numpy()
    if freq == "30min":
        steps = steps + 2.5  # a 30-min row stands for its six 5-min steps: keep the same half-hour mean
    imp = STEP * steps
    df = pd.DataFrame({"import_price": imp, "export_price": imp * export_ratio}, index=idx)
    df["spike_status"] = "none"
    for ts, status in (spike or {}).items():
        df.loc[ts, "spike_status"] = status
    return finalize_price_frame(df, "test", fetched_at=start)


def decode_start(rate: float, start: pd.Timestamp) -> pd.Timestamp:
    """The real UTC start of the half hour whose 5-min mean produced ``rate`` (see ``encoded_prices``)."""
    k0 = int(np.rint(rate / STEP - 2.5))
    return start + k0 * pd.Timedelta(minutes=5)
