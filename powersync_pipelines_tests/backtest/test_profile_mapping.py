"""The one-year household profile lands on the same calendar day and local half-hour of any year."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.backtest import BacktestInputError, map_profile, read_profile
from powersync_pipelines.paths import DATA_DIR

PROFILE = DATA_DIR / "profiles" / "ausgrid_customer12.csv"


@pytest.fixture(scope="module")
def profile():
    return read_profile(PROFILE)


@pytest.fixture(scope="module")
def raw():
    df = pd.read_csv(PROFILE)
    return df.set_index(pd.to_datetime(df["local_time"]))


def test_same_calendar_day_and_local_half_hour(profile, raw):
    # 2024-01-15 10:05 AEDT (UTC+11) is 2024-01-14 23:05Z; the profile row is 2012-01-15 10:00
    idx = pd.DatetimeIndex(["2024-01-14T23:05:00Z", "2024-08-01T00:00:00Z"])
    got = map_profile(profile, idx, "Australia/Sydney", "load_kw")
    assert got[0] == raw.loc["2012-01-15 10:00", "load_kw"]
    assert got[1] == raw.loc["2011-08-01 10:00", "load_kw"]  # AEST (UTC+10) in August


def test_leap_day_and_all_5min_slots_of_a_half_hour(profile, raw):
    idx = pd.date_range("2024-02-29T01:00:00Z", periods=6, freq="5min")  # 12:00-12:25 AEDT
    got = map_profile(profile, idx, "Australia/Sydney", "solar_kw")
    assert np.all(got == raw.loc["2012-02-29 12:00", "solar_kw"])


def test_dst_days_map_every_interval(profile):
    for day in ("2024-04-06T12:00:00Z", "2024-10-05T12:00:00Z"):  # the nights DST ends / starts in Sydney
        idx = pd.date_range(day, periods=288, freq="5min")
        got = map_profile(profile, idx, "Australia/Sydney", "load_kw")
        assert not np.isnan(got).any() and (got >= 0).all()


def test_a_profile_without_the_columns_is_refused(tmp_path):
    f = tmp_path / "p.csv"
    f.write_text("local_time,watts\n2011-07-01 00:00:00,300\n")
    with pytest.raises(BacktestInputError, match="needs columns local_time and load_kw"):
        read_profile(f)
