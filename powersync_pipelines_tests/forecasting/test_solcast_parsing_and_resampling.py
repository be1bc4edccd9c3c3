"""A real Solcast rooftop response parses with the right clock and units (``period_end`` closes a 30-min
period of mean kW) and lands on the 5-minute grid keeping its energy; malformed payloads are refused with a
clear reason."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.forecasts.solcast import SolcastError, parse_forecasts, to_grid

from ._solcast import real_items


def test_period_end_becomes_the_interval_start_half_an_hour_earlier_in_utc(real_data):
    items = real_items(real_data)
    df = parse_forecasts({"forecasts": items})
    assert len(df) == 97
    assert df.index[0] == pd.Timestamp("2024-12-26T17:00Z")  # period_end 17:30:00.0000000Z - PT30M
    assert df.index[-1] == pd.Timestamp("2024-12-28T17:00Z")
    assert (df["period_minutes"] == 30).all()
    assert str(df.index.tz) == "UTC" and (np.diff(df.index.asi8) == 1800e9).all()
    noon = df.loc[pd.Timestamp("2024-12-28T11:30Z")]  # the period ending 12:00Z
    assert (noon["pv_estimate10"], noon["pv_estimate"], noon["pv_estimate90"]) == (0.0261, 0.18, 1.1601)


def test_quantiles_are_kw_and_ordered(real_data):
    df = parse_forecasts({"forecasts": real_items(real_data)})
    assert (df["pv_estimate10"] <= df["pv_estimate"]).all() and (df["pv_estimate"] <= df["pv_estimate90"]).all()
    assert df["pv_estimate90"].max() == pytest.approx(1.2174)  # a ~1.5 kW roof in December: kW, not W
    # daylight only between 08:00 and 16:00 UTC in late December in France
    lit = df.index[df["pv_estimate90"] > 0]
    assert lit.hour.min() >= 8 and lit.hour.max() <= 15


def test_each_period_is_held_over_its_six_five_minute_slots_and_energy_is_kept(real_data):
    periods = parse_forecasts({"forecasts": real_items(real_data)})
    index = pd.date_range("2024-12-26T17:10Z", periods=576, freq="5min", tz="UTC")
    grid = to_grid(periods, index)
    slot = grid.loc["2024-12-27T11:30Z":"2024-12-27T11:55Z", "pv_estimate"]
    assert len(slot) == 6 and (slot == 0.1459).all()  # the period ending 12:00Z
    assert grid.loc[pd.Timestamp("2024-12-27T11:25Z"), "pv_estimate"] == 0.1369  # the one ending 11:30Z
    assert grid.loc[pd.Timestamp("2024-12-27T12:00Z"), "pv_estimate"] == 0.1437  # the one ending 12:30Z
    inside = periods.loc[periods.index >= index[0]]
    assert grid["pv_estimate"].sum() * 5 / 60 == pytest.approx(inside["pv_estimate"].sum() * 0.5)
    # the slots before 17:10 of the first period are outside the index; slots past the response are NaN
    assert grid["pv_estimate"].notna().all()
    beyond = to_grid(periods, pd.date_range("2024-12-28T17:25Z", periods=3, freq="5min", tz="UTC"))
    assert beyond["pv_estimate"].iloc[0] == 0 and beyond["pv_estimate"].iloc[1:].isna().all()


@pytest.mark.parametrize("body, match", [
    ({"estimated_actuals": []}, "expected an object with a 'forecasts' list"),
    ({"forecasts": []}, "'forecasts' is empty"),
    ({"forecasts": [{"pv_estimate": 1.0}]}, r"forecasts\[0\] has no 'period_end'"),
    ({"forecasts": [{"period_end": "2024-12-26T17:30:00", "pv_estimate": 1}]}, "has no UTC offset"),
    ({"forecasts": [{"period_end": "2024-12-26T17:30:00Z", "pv_estimate": -0.2}]}, "is not a kW value"),
    ({"forecasts": [{"period_end": "2024-12-26T17:30:00Z", "pv_estimate": "lots"}]}, "is not a kW value"),
    ({"forecasts": [{"period_end": "2024-12-26T17:30:00Z", "pv_estimate": 1, "period": "PT7M"}]}, "5-60 minutes"),
    ({"forecasts": [{"period_end": "2024-12-26T17:30:00Z", "pv_estimate": 1, "period": "P1D"}]}, "is not 'PT<n>M'"),
    ({"forecasts": [{"period_end": "2024-12-26T17:30:00Z", "pv_estimate": 1},
                    {"period_end": "2024-12-26T17:30:00Z", "pv_estimate": 2}]}, "appears twice"),
    ({"forecasts": [{"period_end": "2024-12-26T17:30:00Z", "pv_estimate": 1, "pv_estimate10": 2,
                     "pv_estimate90": 3}]}, "P10 <= P50 <= P90"),
])
def test_malformed_payloads_are_refused_with_the_reason(body, match):
    with pytest.raises(SolcastError, match=match) as info:
        parse_forecasts(body)
    assert info.value.reason == "malformed"


def test_a_response_without_p10_p90_still_gives_the_p50():
    body = json.loads('{"forecasts":[{"pv_estimate":0.5,"period_end":"2024-12-27T12:00:00.0000000Z","period":"PT30M"}]}')
    df = parse_forecasts(body)
    assert df["pv_estimate"].iloc[0] == 0.5 and df[["pv_estimate10", "pv_estimate90"]].isna().all().all()
