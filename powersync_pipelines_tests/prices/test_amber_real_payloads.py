"""Real Amber ``/prices`` responses (SA, 2024-11 .. 2025-04) parse into the frame with the right clock, units
and signs. The files are read from ../shared (never copied: no licence)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.prices.amber import parse_amber_prices, read_amber_file

MARKET_PRICE_CAP_2024_25 = 17_500.0  # $/MWh, FY2024-25


@pytest.fixture(scope="module")
def amber_root():
    from powersync_pipelines.paths import shared_real_data

    root = shared_real_data()
    if root is None or not (root / "amber/enkit-matlab").exists():
        pytest.skip("../shared/data/real/amber is not present (unlicensed files are never shipped in the repo)")
    return root / "amber/enkit-matlab"


@pytest.fixture(scope="module")
def five_min(amber_root) -> pd.DataFrame:
    """All 124 day files, read as a saved-payload folder (cached, so other modules reuse the parse)."""
    from powersync_pipelines.prices.saved import saved_history

    from .conftest import make_site

    site = make_site("amber", region="SA1", token_env="AMBER_TOKEN", file=str(amber_root / "sa_prices_5min"))
    return saved_history(site)


def test_a_nem_day_is_288_five_minute_intervals_starting_at_nem_midnight(amber_root):
    raw = json.loads((amber_root / "sa_prices_5min/20250115.json").read_text())
    df = read_amber_file(amber_root / "sa_prices_5min/20250115.json")
    assert len(df) == 288
    # the NEM day 15 Jan starts 00:00 +10:00 = 14:00 UTC on the 14th; Amber's startTime says 14:00:01
    assert df.index[0] == pd.Timestamp("2025-01-14T14:00:00Z")
    assert df.index[-1] == pd.Timestamp("2025-01-15T13:55:00Z")
    assert (np.diff(df.index.asi8) == 300e9).all()
    first_general = next(x for x in raw if x["channelType"] == "general")
    assert df["import_price"].iloc[0] == pytest.approx(first_general["perKwh"] / 100)  # 38.79346 c -> $0.3879


def test_feed_in_sign_is_flipped_so_export_positive_means_paid(amber_root):
    raw = json.loads((amber_root / "sa_prices_5min/20250115.json").read_text())
    feed = {x["endTime"]: x["perKwh"] for x in raw if x["channelType"] == "feedIn"}
    df = read_amber_file(amber_root / "sa_prices_5min/20250115.json")
    last_end = df.index[-1] + pd.Timedelta(minutes=5)
    assert feed[last_end.strftime("%Y-%m-%dT%H:%M:%SZ")] == pytest.approx(-11.68554)
    assert df["export_price"].iloc[-1] == pytest.approx(0.1168554)


def test_five_minute_history_is_continuous_and_the_owner_never_earns_more_than_they_pay(five_min):
    assert five_min.index.is_unique and five_min.index.is_monotonic_increasing
    assert (np.diff(five_min.index.asi8) == 300e9).all()  # 124 contiguous days, no hole
    assert len(five_min) == 124 * 288
    # retail margin: import >= export in all but two deeply negative intervals (30 Nov 2024, 14:00-14:15 NEM)
    worse = five_min[five_min["import_price"] < five_min["export_price"]]
    assert len(worse) == 2 and (worse["import_price"] < -0.9).all()


def test_spot_price_tops_out_at_the_market_price_cap_times_gst(five_min):
    # spotPerKwh = RRP / 10 * 1.1 (c/kWh inc GST) -> $/kWh = RRP / 1000 * 1.1
    assert five_min["spot_price"].max() == pytest.approx(MARKET_PRICE_CAP_2024_25 / 1000 * 1.1)
    spikes = five_min[five_min["spike_status"] == "spike"]
    assert len(spikes) == 26
    # every Amber spike interval had a wholesale price above any non-spike one
    assert spikes["spot_price"].min() > five_min.loc[five_min["spike_status"] == "none", "spot_price"].max()


def test_thirty_minute_prices_are_the_mean_of_the_six_five_minute_prices(amber_root, five_min):
    days = ["20250115", "20250116", "20250117"]
    half = pd.concat([read_amber_file(amber_root / f"sa_prices_30min/{d}.json") for d in days])
    assert (np.diff(half.index.asi8) == 1800e9).all() and len(half) == 3 * 48
    mean5 = five_min["import_price"].resample("30min").mean().reindex(half.index)
    np.testing.assert_allclose(mean5, half["import_price"], atol=1e-6)


def test_current_and_forecast_response_prefers_advanced_predicted_with_its_range(amber_root):
    path = amber_root / "sa_forecast_30min/raw_example/20250410_035149.json"
    raw = json.loads(path.read_text())
    df = read_amber_file(path)
    forecasts = [x for x in raw if x["channelType"] == "general" and x["type"] == "ForecastInterval"]
    assert int(df["is_forecast"].sum()) == len(forecasts) == 48
    x = forecasts[0]
    start = pd.Timestamp(x["endTime"]) - pd.Timedelta(minutes=30)
    assert df.loc[start, "import_price"] == pytest.approx(x["advancedPrice"]["predicted"] / 100)
    assert df.loc[start, "import_price"] != pytest.approx(x["perKwh"] / 100)
    fc = df[df["is_forecast"]]
    assert (fc["price_low"] <= fc["import_price"] + 1e-12).all() and (fc["import_price"] <= fc["price_high"] + 1e-12).all()
    assert df.loc[~df["is_forecast"], "price_low"].isna().iloc[:48].all()  # actuals carry no range


def test_mixed_five_and_thirty_minute_response_lands_on_the_five_minute_grid(amber_root):
    path = amber_root / "prices_sa_current_2025-03-29/5min/20250329.json"
    raw = json.loads(path.read_text())
    df = read_amber_file(path)
    assert len(df) == 288 and (np.diff(df.index.asi8) == 300e9).all()
    first30 = next(x for x in raw if x["channelType"] == "general" and x["duration"] == 30)
    start = pd.Timestamp(first30["endTime"]) - pd.Timedelta(minutes=30)
    block = df.loc[start: start + pd.Timedelta(minutes=25), "import_price"]
    assert len(block) == 6 and block.nunique() == 1
    assert block.iloc[0] == pytest.approx(first30["advancedPrice"]["predicted"] / 100)


def test_an_hour_shifted_nemtime_is_refused(amber_root):
    raw = json.loads((amber_root / "sa_prices_5min/20250115.json").read_text())[:6]
    raw[3] = {**raw[3], "nemTime": "2025-01-15T00:20:00+11:00"}  # a parser that thought SA was on daylight time
    from powersync_pipelines.prices.errors import PriceDataError

    with pytest.raises(PriceDataError, match="timezone off by an hour"):
        parse_amber_prices(raw)
