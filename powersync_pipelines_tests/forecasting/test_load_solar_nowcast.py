"""The load and solar profiles corrected by the last half hour's measurements (forecasts.nowcast), in the backtest
replay and in the live pipeline (telemetry in a real DuckDB store)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.backtest.data import BacktestData
from powersync_pipelines.backtest.forecasts import ForecastOptions, make_forecast, recent_days_profile
from powersync_pipelines.control import cycle as pipeline
from powersync_pipelines.forecasts.nowcast import RECENT_STEPS, load_nowcast, solar_nowcast
from powersync_pipelines.forecasts.solar import solar_forecast_kw


def test_load_difference_is_added_now_and_fades_over_the_time_constant():
    profile = np.full(48, 1.0)
    out = load_nowcast(profile, measured=np.full(6, 3.0), modelled=np.full(6, 1.0), hours=0.5)
    assert out[0] == pytest.approx(3.0)
    assert out[6] == pytest.approx(1.0 + 2.0 * math.exp(-1.0))  # half an hour ahead: one e-folding
    assert out[-1] == pytest.approx(1.0, abs=1e-3)


def test_load_below_the_profile_never_forecasts_negative_power():
    out = load_nowcast(np.full(12, 0.4), measured=np.full(6, 0.0), modelled=np.full(6, 2.0), hours=0.5)
    assert out.min() == 0.0
    assert out[-1] > 0.0  # the correction has faded back towards the profile


@pytest.mark.parametrize("measured, hours", [(np.full(6, np.nan), 0.5), (np.array([]), 0.5), (np.full(6, 3.0), None),
                                             (np.full(6, 3.0), 0.0), (np.full(6, -2.0), 0.5)])
def test_load_profile_is_kept_without_usable_measurements_or_when_switched_off(measured, hours):
    profile = np.linspace(0.5, 2.0, 24)
    out = load_nowcast(profile, measured=measured, modelled=np.full(len(measured), 1.0), hours=hours)
    np.testing.assert_array_equal(out, profile)


def test_cloudy_half_hour_scales_solar_down_and_the_model_returns_over_hours():
    model = np.full(72, 2.0)
    out = solar_nowcast(model, measured=np.full(6, 1.0), modelled=np.full(6, 2.0), hours=4.0)
    assert out[0] == pytest.approx(1.0)
    assert out[48] == pytest.approx(2.0 * (1 - 0.5 * math.exp(-1.0)))  # 4 h ahead
    assert np.all(np.diff(out) > 0)


def test_solar_ratio_is_capped_and_not_used_in_the_dark():
    model = np.full(24, 1.0)
    bright = solar_nowcast(model, measured=np.full(6, 9.0), modelled=np.full(6, 1.0), hours=4.0)
    assert bright[0] == pytest.approx(2.0)
    dark = solar_nowcast(model, measured=np.full(6, 0.05), modelled=np.full(6, 0.01), hours=4.0)
    np.testing.assert_array_equal(dark, model)


def _replay(load_kw: np.ndarray, solar_kw: np.ndarray) -> BacktestData:
    n = len(load_kw)
    index = pd.date_range("2024-06-01", periods=n, freq="5min", tz="UTC")
    price = np.full(n, 0.25)
    return BacktestData(index=index, import_price=price, export_price=price * 0.3, load_kw=load_kw, solar_kw=solar_kw,
                        i0=3 * 288, i1=n)


def test_backtest_profile_forecast_reads_only_the_measured_past_half_hour():
    """At slot i the replay knows slots < i: the correction is measured[i-6:i] - profile there, nothing later."""
    n = 5 * 288
    rng = np.random.default_rng(3)
    load = 0.8 + 0.2 * rng.random(n)
    solar = np.tile(np.clip(np.sin(np.linspace(-np.pi / 2, 3 * np.pi / 2, 288)), 0, None), 5)
    i = 4 * 288 + 144  # midday of the fifth day
    load[i - RECENT_STEPS:i] += 2.0  # the oven is on
    solar[i - RECENT_STEPS:i] *= 0.5  # and a cloud is passing
    data = _replay(load, solar)
    fc = make_forecast("persistence", data, ForecastOptions())
    fl, fs = fc.load_solar(i, 96)
    base_l = recent_days_profile(data.load_kw, i, 96, 3)
    base_s = recent_days_profile(data.solar_kw, i, 96, 3)
    lo = i - RECENT_STEPS
    expected_diff = load[lo:i].mean() - recent_days_profile(data.load_kw, lo, RECENT_STEPS, 3).mean()
    assert expected_diff > 1.9
    assert fl[0] == pytest.approx(base_l[0] + expected_diff)
    assert fs[0] == pytest.approx(base_s[0] * 0.5, rel=0.02)
    # the future after i does not matter: changing it changes nothing
    future = load.copy()
    future[i:] = 9.0
    fl2, _ = make_forecast("persistence", _replay(future, solar), ForecastOptions()).load_solar(i, 96)
    np.testing.assert_array_equal(fl, fl2)
    # switched off: the plain recent-days profile
    off = make_forecast("persistence", data, ForecastOptions(load_nowcast_hours=None, solar_nowcast_hours=None))
    fl3, fs3 = off.load_solar(i, 96)
    np.testing.assert_array_equal(fl3, base_l)
    np.testing.assert_array_equal(fs3, base_s)


def _telemetry(store, site_id: str, start: pd.Timestamp, end: pd.Timestamp, load_kw, solar_kw=None) -> None:
    """5-minute telemetry rows in [start, end), written in one upsert (days of them one by one take a minute)."""
    ts = pd.date_range(start, end, freq="5min", inclusive="left")
    rows = pd.DataFrame({"site_id": site_id, "ts": ts, "load_kw": [float(load_kw(t)) for t in ts]})
    if solar_kw is not None:
        rows["solar_kw"] = [float(solar_kw(t)) for t in ts]
    store.upsert("telemetry", rows, ["site_id", "ts"])


def test_live_load_forecast_adds_the_measured_last_half_hour(store, demo_site):
    now = pd.Timestamp("2024-02-12T06:00Z")  # 17:00 in Melbourne
    _telemetry(store, demo_site.id, now - pd.Timedelta(days=8), now - pd.Timedelta(minutes=30), lambda ts: 1.0)
    _telemetry(store, demo_site.id, now - pd.Timedelta(minutes=30), now, lambda ts: 4.0)
    load, model = pipeline.load_forecast(demo_site, now, store)
    assert model == "history_profile+nowcast"
    assert load.iloc[0] == pytest.approx(4.0, abs=0.05)  # the profile said 1 kW; the last half hour was 4 kW
    assert load.iloc[36] == pytest.approx(1.0, abs=0.01)  # 20:00, three hours on: faded back to the profile
    stored = store.query("SELECT DISTINCT model FROM forecasts WHERE kind = 'load'")
    assert stored["model"].tolist() == ["history_profile+nowcast"]


def test_live_forecasts_without_recent_telemetry_are_the_plain_profiles(store, demo_site):
    now = pd.Timestamp("2024-02-12T06:00Z")
    _telemetry(store, demo_site.id, now - pd.Timedelta(days=8), now - pd.Timedelta(hours=2), lambda ts: 1.0,
               lambda ts: 1.0)
    _, load_model = pipeline.load_forecast(demo_site, now, store)
    assert load_model == "history_profile"
    solar = pipeline.solar_forecast(demo_site, now, store)
    pd.testing.assert_series_equal(solar, solar_forecast_kw(demo_site, pipeline.horizon_index(now)))


def test_live_solar_forecast_follows_a_cloudy_half_hour(store, demo_site):
    now = pd.Timestamp("2024-02-12T02:00Z")  # 13:00 in Melbourne, near the solar peak
    recent = pd.date_range(now - pd.Timedelta(minutes=30), now, freq="5min", inclusive="left")
    modelled = solar_forecast_kw(demo_site, recent)
    _telemetry(store, demo_site.id, recent[0], now, lambda ts: 0.5, lambda ts: 0.3 * modelled[ts])
    solar = pipeline.solar_forecast(demo_site, now, store)
    clear = solar_forecast_kw(demo_site, pipeline.horizon_index(now))
    assert solar.iloc[0] == pytest.approx(0.3 * clear.iloc[0], rel=1e-6)
    assert (solar <= clear + 1e-9).all()
    assert solar.iloc[48] / clear.iloc[48] == pytest.approx(1 - 0.7 * math.exp(-1.0), rel=1e-6)  # 4 h on
    stored = store.query("SELECT DISTINCT model FROM forecasts WHERE kind = 'solar'")
    assert stored["model"].tolist() == ["pvlib_clearsky_climatology+nowcast"]


def test_live_solar_forecast_after_a_bright_half_hour_stays_within_the_array_rating(store, demo_site):
    now = pd.Timestamp("2024-02-12T02:00Z")
    recent = pd.date_range(now - pd.Timedelta(minutes=30), now, freq="5min", inclusive="left")
    modelled = solar_forecast_kw(demo_site, recent)
    _telemetry(store, demo_site.id, recent[0], now, lambda ts: 0.5, lambda ts: 1.9 * modelled[ts])
    solar = pipeline.solar_forecast(demo_site, now, store)
    clear = solar_forecast_kw(demo_site, pipeline.horizon_index(now))
    assert solar.max() == pytest.approx(demo_site.solar.peak_kw)
    assert (solar >= clear - 1e-9).all()
