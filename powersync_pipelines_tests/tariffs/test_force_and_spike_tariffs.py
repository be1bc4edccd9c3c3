"""Force-charge, force-discharge and AEMO spike tariffs: the window in local half hours, Tesla-clean rates."""

from __future__ import annotations

import pandas as pd
import pytest

from powersync_pipelines.tariffs.periods import PERIOD_NAMES
from powersync_pipelines.tariffs.tesla import (
    force_charge_tariff,
    force_discharge_tariff,
    spike_tariff,
    window_names,
)

from .factories import make_site


def _rates(payload: dict) -> tuple[dict[str, float], dict[str, float]]:
    t = payload["tariff_content_v2"]
    return t["energy_charges"]["Summer"]["rates"], t["sell_tariff"]["energy_charges"]["Summer"]["rates"]


def test_force_charge_makes_only_the_window_cheap() -> None:
    site = make_site("Australia/Brisbane")
    now = pd.Timestamp("2024-06-03T03:10:00Z")  # 13:10 local
    buy, sell = _rates(force_charge_tariff(site, now, minutes=45))
    inside = ["PERIOD_13_00", "PERIOD_13_30"]  # 13:10 + 45 min = 13:55: two half hours
    assert [n for n in PERIOD_NAMES if buy[n] == 0.0] == inside
    assert all(buy[n] == 10.0 for n in PERIOD_NAMES if n not in inside)
    assert set(sell.values()) == {0.0}


def test_force_discharge_window_across_midnight_sells_high() -> None:
    site = make_site("Australia/Sydney")
    now = pd.Timestamp("2024-06-03T13:40:00Z")  # 23:40 AEST
    payload = force_discharge_tariff(site, now, minutes=60)
    buy, sell = _rates(payload)
    inside = {"PERIOD_23_30", "PERIOD_00_00", "PERIOD_00_30"}
    assert {n for n in PERIOD_NAMES if sell[n] == 99.0} == inside
    assert all(buy[n] >= sell[n] for n in PERIOD_NAMES)  # Tesla: sell never above buy
    assert sell["PERIOD_12_00"] == 0.08 and buy["PERIOD_12_00"] == 0.30
    assert payload["tariff_content_v2"]["code"] == "POWER_SYNC:DISCHARGE_60"


def test_force_window_on_a_dst_night_counts_real_minutes() -> None:
    site = make_site("Australia/Sydney")
    now = pd.Timestamp("2024-10-05T15:40:00Z")  # 01:40 AEST, the clock jumps 02:00 -> 03:00 at 16:00Z
    names = window_names(now, site, 60)
    assert names == ["PERIOD_01_30", "PERIOD_02_00", "PERIOD_02_30", "PERIOD_03_00", "PERIOD_03_30"]
    # 02:xx never happens tonight; what matters is that 03:00-03:59 (real minutes 20-80) is inside
    with pytest.raises(ValueError, match="1-1440 minutes"):
        window_names(now, site, 0)


def test_spike_tariff_sells_at_three_times_spot_for_two_hours() -> None:
    site = make_site("Australia/Adelaide")
    now = pd.Timestamp("2024-01-10T05:05:00Z")  # 15:35 ACDT
    buy, sell = _rates(spike_tariff(site, now, rrp_per_mwh=1500.0))
    high = [n for n in PERIOD_NAMES if sell[n] == 4.5]
    assert high == ["PERIOD_15_30", "PERIOD_16_00", "PERIOD_16_30", "PERIOD_17_00", "PERIOD_17_30"]
    assert set(buy.values()) == {9.0}  # max(2 x sell, $5) everywhere: nothing charges from the grid
    assert all(sell[n] == 0.08 for n in PERIOD_NAMES if n not in high)
    with pytest.raises(ValueError, match="positive RRP"):
        spike_tariff(site, now, rrp_per_mwh=-50.0)
