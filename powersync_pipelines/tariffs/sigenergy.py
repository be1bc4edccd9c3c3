"""Sigenergy cloud TOU payload: 48 half-hour buy and sell prices for ``/device/stationelecsetprice/save``.

Body shape (reference/devices.md §2.6, behaviour.md §5.1; the private mySigen app API, reverse-engineered by
amber2sigen and PowerSync, so it can change without notice): ``stationId`` (numeric, from
``GET /device/station/list``), ``priceMode: 1`` (static price table), and ``buyPrice``/``sellPrice`` each
``{dynamicPricing: null, staticPricing: {providerName, tariffCode, tariffName, currencyCode: "Cent",
subAreaName, planName, combinedPrices: [{monthRange: "01-12", weekPrices: [{weekRange: "1-7",
timeRange: [{timeRange: "HH:MM-HH:MM", price: <cents, 2 dp>}]}]}]}}``. The last slot ends "24:00".

Like Tesla's, the table is read by the local wall clock, so it carries the same rolling 24 h of rates
(``periods.half_hour_rates``) and is refreshed as time moves on. Nothing documents a ban on negative prices
or sell > buy here, so the rates are passed as they are (the battery is driven over Modbus; with Sigen's AI
mode the table mainly informs it and the app).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..config import SiteConfig
from .adjustments import apply_adjustments, is_adjusted
from .periods import PERIOD_NAMES, half_hour_rates
from .tesla import provider_labels


def time_range(name: str) -> str:
    h, m = int(name[7:9]), int(name[10:12])
    end = h * 60 + m + 30
    return f"{h:02d}:{m:02d}-{end // 60:02d}:{end % 60:02d}"


def _cents(x: float) -> float:
    return round(float(x) * 100.0, 2) + 0.0


def _pricing(rates: dict[str, float], provider: str, plan: str) -> dict[str, Any]:
    return {
        "dynamicPricing": None,
        "staticPricing": {
            "providerName": provider,
            "tariffCode": "",
            "tariffName": "",
            "currencyCode": "Cent",
            "subAreaName": "",
            "planName": plan,
            "combinedPrices": [
                {
                    "monthRange": "01-12",
                    "weekPrices": [
                        {
                            "weekRange": "1-7",
                            "timeRange": [{"timeRange": time_range(n), "price": _cents(rates[n])} for n in PERIOD_NAMES],
                        }
                    ],
                }
            ],
        },
    }


def station_id_for(site: SiteConfig) -> int | None:
    """The numeric station id if the sites file carries it (``battery.station_id``), else None."""
    raw = getattr(site.battery, "station_id", None) or site.battery.energy_site_id
    return int(raw) if raw is not None and str(raw).isdigit() else None


def sigenergy_payload_from_rates(rates: pd.DataFrame, site: SiteConfig, station_id: int | None = None) -> dict[str, Any]:
    _, utility = provider_labels(site)
    plan = f"{utility} 30-min (PowerSync)"
    body: dict[str, Any] = {}
    sid = station_id if station_id is not None else station_id_for(site)
    if sid is not None:
        body["stationId"] = sid
    body["priceMode"] = 1
    body["buyPrice"] = _pricing(rates["buy"].to_dict(), utility, plan)
    body["sellPrice"] = _pricing(rates["sell"].to_dict(), utility, plan)
    return body


def build_sigenergy_tariff(prices: pd.DataFrame, site: SiteConfig, now: pd.Timestamp,
                           plan: pd.DataFrame | None = None, station_id: int | None = None) -> dict[str, Any]:
    """The static 30-min price table the Sigenergy cloud should show at ``now`` (adjusted prices, in cents).

    ``stationId`` is included when known (argument or ``battery.station_id``); otherwise the uploader adds
    it after listing the account's stations.
    """
    adjusted = prices if is_adjusted(prices) else apply_adjustments(prices, site)
    rates = half_hour_rates(adjusted, site.tz, now, plan)
    return sigenergy_payload_from_rates(rates, site, station_id)
