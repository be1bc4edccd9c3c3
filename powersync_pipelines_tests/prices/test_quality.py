"""The data-quality layer: what is fixed (short gaps, flagged) and what is refused (with provider + problem)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.prices.errors import PriceDataError
from powersync_pipelines.prices.quality import (
    check_index,
    check_price_unit,
    detect_hour_shift,
    fill_short_gaps,
    gap_report,
    guess_price_unit,
    missing_fraction_first_24h,
)
from powersync_pipelines.schemas import finalize_price_frame

START = pd.Timestamp("2025-01-15T00:00:00Z")


def frame(n: int = 288, step: str = "5min", seed: int = 3, start: pd.Timestamp = START) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    idx = pd.date_range(start, periods=n, freq=step, tz="UTC", name="interval_start")
    imp = 0.25 + 0.1 * np.sin(np.arange(n) / 20) + rng.normal(0, 0.01, n)
    df = pd.DataFrame({"import_price": imp, "export_price": imp - 0.15, "is_forecast": idx >= start + pd.Timedelta(hours=2)},
                      index=idx)
    return finalize_price_frame(df, source="test", fetched_at=START)


def test_short_gaps_are_forward_filled_and_flagged():
    df = frame().drop(index=frame().index[100:104])  # 20 minutes missing
    out = fill_short_gaps(df, "amber")
    assert len(out) == 288 and int(out["filled"].sum()) == 4
    assert (out.loc[out["filled"], "import_price"] == df["import_price"].iloc[99]).all()
    assert gap_report(out, START).missing_fraction == 0.0 and gap_report(out, START).filled == 4


def test_nan_prices_count_as_gaps_too():
    df = frame()
    df.iloc[50, df.columns.get_loc("import_price")] = np.nan
    out = fill_short_gaps(df, "aemo")
    assert out["filled"].sum() == 1 and out["import_price"].notna().all()


def test_long_gaps_stay_missing_and_over_ten_percent_stops_tariff_sync():
    df = frame().drop(index=frame().index[60:96])  # 3 hours: 12.5% of the day
    out = fill_short_gaps(df, "aemo")
    report = gap_report(out, START)
    assert report.missing_fraction == pytest.approx(36 / 288)
    assert not report.tariff_sync_allowed()
    assert missing_fraction_first_24h(out, START) == pytest.approx(36 / 288)
    ok = fill_short_gaps(frame().drop(index=frame().index[60:72]), "aemo")  # 1 hour: 4%
    assert gap_report(ok, START).tariff_sync_allowed()


def test_a_horizon_that_ends_early_counts_as_missing():
    short = frame(n=240)  # 20 h of a 24 h window
    assert missing_fraction_first_24h(short, START) == pytest.approx(48 / 288)


def test_duplicated_and_out_of_order_intervals_are_refused():
    df = frame(12)
    dup = pd.concat([df, df.iloc[[3]]])
    with pytest.raises(PriceDataError, match="duplicated intervals.*2025-01-15T00:15"):
        check_index(dup, "octopus")
    disorder = df.iloc[[0, 2, 1, 3]]
    with pytest.raises(PriceDataError) as err:
        check_index(disorder, "octopus")
    assert err.value.provider == "octopus" and err.value.problem == "out_of_order_intervals"


def test_intervals_off_the_grid_are_refused():
    df = frame(12)
    odd = df.rename(index={df.index[5]: df.index[5] + pd.Timedelta(minutes=2)})
    with pytest.raises(PriceDataError, match="off grid"):
        fill_short_gaps(odd, "amber")


@pytest.mark.parametrize("values, expected, guess", [
    ([25.1, 31.0, 40.2, 18.5, 33.3, 29.9, 35.0], "$/kWh", "c/kWh"),
    ([85.0, 120.4, 240.0, 310.0, 160.0, 175.5, 199.0], "$/kWh", "$/MWh"),
])
def test_wrong_units_are_named(values, expected, guess):
    with pytest.raises(PriceDataError, match=f"look like {guess.replace('$', '[$]')}"):
        check_price_unit(values, expected, "flow_power")
    assert guess_price_unit(values) == guess


def test_plausible_units_pass():
    check_price_unit([0.25, 0.31, -0.02, 0.4, 0.18, 0.22, 19.25], "$/kWh", "amber")
    check_price_unit([38.8, 41.2, -5.0, 12.0, 60.0, 25.0], "c/kWh", "amber")
    check_price_unit([52.1, -12.3, 95.2, 300.0, 15000.0, 48.0], "$/MWh", "aemo")


def test_a_feed_shifted_by_an_hour_is_detected_against_stored_actuals():
    stored = frame()
    shifted = stored.copy()
    shifted.index = shifted.index - pd.Timedelta(hours=1)  # the same prices stamped an hour early
    assert detect_hour_shift(shifted, stored) == 1
    assert detect_hour_shift(stored, stored) == 0
    flat = stored.copy()
    flat["import_price"] = 0.3  # a flat tariff matches at every shift: no evidence, no alarm
    assert detect_hour_shift(flat, flat) == 0
