"""Small ``tariff_content_v2`` builders for Tesla forced modes (reference/behaviour.md §4.3, devices.md §3.2).

A Powerwall cannot be told "charge at X kW"; in autonomous mode it follows the tariff. A window priced free to
buy makes it charge from the grid; a window with a very high sell price makes it export. Full TOU sync from
price forecasts lives in ``tariffs/``; these only cover the force windows and read a period's price back.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..tariffs.periods import period_name
from ..tariffs.tesla import period_span

FORCE_CODE_PREFIX = "POWERSYNC_FORCE"


def window_tariff(start: pd.Timestamp, end: pd.Timestamp, tz: str, *, buy_in: float, sell_in: float,
                  buy_out: float, sell_out: float, code: str, currency: str = "AUD") -> dict[str, Any]:
    """48 half-hour periods (local time); periods overlapping [start, end) get the *_in prices ($/kWh)."""
    s, e = pd.Timestamp(start).tz_convert(tz), pd.Timestamp(end).tz_convert(tz)
    day = s.normalize()
    buy: dict[str, float] = {}
    sell: dict[str, float] = {}
    periods: dict[str, Any] = {}
    for k in range(48):
        h, m = divmod(k * 30, 60)
        name = period_name(h, m)
        inside = False
        for offset in (0, 1):  # the window may cross midnight into tomorrow's same clock slot
            slot_start = day + pd.Timedelta(days=offset, hours=h, minutes=m)
            slot_end = slot_start + pd.Timedelta(minutes=30)
            inside = inside or (slot_start < e and slot_end > s)
        buy[name] = round(buy_in if inside else buy_out, 4)
        sell[name] = round(sell_in if inside else sell_out, 4)
        periods[name] = {"periods": [period_span(h, m)]}
    seasons = {
        "Summer": {"fromDay": 1, "toDay": 31, "fromMonth": 1, "toMonth": 12, "tou_periods": periods},
        "Winter": {"tou_periods": {}},
    }
    empty = {"ALL": {"rates": {"ALL": 0}}, "Summer": {}, "Winter": {}}
    return {
        "version": 1, "code": code, "name": f"{code} (PowerSync)", "utility": "PowerSync", "currency": currency,
        "daily_charges": [{"name": "Charge"}], "demand_charges": empty,
        "energy_charges": {"ALL": {"rates": {"ALL": 0}}, "Summer": {"rates": buy}, "Winter": {}},
        "seasons": seasons,
        "sell_tariff": {"name": f"{code} (managed by PowerSync)", "utility": "PowerSync",
                        "daily_charges": [{"name": "Charge"}], "demand_charges": empty,
                        "energy_charges": {"ALL": {"rates": {"ALL": 0}}, "Summer": {"rates": sell}, "Winter": {}},
                        "seasons": seasons},
    }


def price_at(tariff: dict[str, Any], local: pd.Timestamp) -> tuple[float | None, float | None]:
    """(buy, sell) $/kWh of the period containing the local time ``local`` (None when not covered)."""
    minute = local.hour * 60 + local.minute
    summer = tariff.get("seasons", {}).get("Summer", {})
    for name, spec in summer.get("tou_periods", {}).items():
        for p in spec.get("periods", []):
            start = p.get("fromHour", 0) * 60 + p.get("fromMinute", 0)
            stop = p.get("toHour", 0) * 60 + p.get("toMinute", 0)
            if start <= minute < stop:
                buy = tariff.get("energy_charges", {}).get("Summer", {}).get("rates", {}).get(name)
                sell_t = tariff.get("sell_tariff", {}).get("energy_charges", {}).get("Summer", {})
                return buy, sell_t.get("rates", {}).get(name)
    return None, None
