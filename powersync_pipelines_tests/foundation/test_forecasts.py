"""Solar (pvlib clear-sky) and load (profile / measured history) forecasts on the 5-minute UTC grid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.forecasts.load import history_load_kw, load_forecast_kw, profile_load_kw
from powersync_pipelines.forecasts.solar import solar_forecast_kw


def _idx(start: str, hours: int = 48) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=hours * 12, freq="5min", tz="UTC", name="interval_start")


def test_solar_is_zero_at_night_and_peaks_near_local_noon(demo_site):
    idx = _idx("2024-02-12T13:00Z", 24)  # local midnight AEDT
    kw = solar_forecast_kw(demo_site, idx)
    local = kw.tz_convert("Australia/Melbourne")
    assert local.between_time("22:00", "04:00").max() == 0.0
    peak_hour = local.idxmax().hour
    assert 11 <= peak_hour <= 15
    assert 0 < kw.max() <= demo_site.solar.peak_kw
    # a 6.6 kW north-facing array in a Melbourne February: 20-45 kWh/day expected
    assert 20 < kw.sum() / 12 < 45


def test_solar_winter_day_is_smaller_than_summer(demo_site):
    summer = solar_forecast_kw(demo_site, _idx("2024-01-14T13:00Z", 24)).sum()
    winter = solar_forecast_kw(demo_site, _idx("2024-07-14T14:00Z", 24)).sum()
    assert winter < 0.6 * summer


def test_profile_load_maps_local_time_of_day_and_covers_leap_day(demo_site):
    idx = _idx("2024-02-28T13:00Z", 48)  # spans 29 Feb 2024 local, absent from the 2011-12 profile? (it has it)
    kw = profile_load_kw(demo_site, idx)
    assert not kw.isna().any() and (kw >= 0).all()
    # the 30-min profile value is held for each of its six 5-min intervals
    local = kw.tz_convert("Australia/Melbourne")
    first_half_hour = local.iloc[:6]
    assert first_half_hour.nunique() == 1


def test_history_profile_used_once_a_week_of_telemetry_exists(demo_site):
    idx = _idx("2024-02-12T13:00Z", 24)
    past = pd.date_range(idx[0] - pd.Timedelta(days=10), idx[0], freq="5min", inclusive="left", tz="UTC")
    local_h = past.tz_convert("Australia/Melbourne").hour
    history = pd.Series(np.where((local_h >= 17) & (local_h < 21), 3.0, 0.5), index=past)
    kw, model = load_forecast_kw(demo_site, idx, history)
    assert model == "history_profile"
    local = kw.tz_convert("Australia/Melbourne")
    assert local.between_time("18:00", "20:00").mean() == pytest.approx(3.0)
    assert local.between_time("02:00", "04:00").mean() == pytest.approx(0.5)
    short = history.iloc[-288:]
    _, fallback = load_forecast_kw(demo_site, idx, short)
    assert fallback == "standard_profile"
    assert history_load_kw(history, idx, "Australia/Melbourne").notna().all()
