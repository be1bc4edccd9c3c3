"""``published_rows`` (run once per site per planning cycle, so computed on arrays) keeps exactly the intervals
marked ``is_forecast`` or starting at or after the fetch's 5-minute interval, in UTC whatever the frame's time
zone or resolution, with the lead time in whole minutes; a frame without a real fetch time gives none."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from powersync_pipelines.prices.archive import COLUMNS, EPOCH, published_rows

T0 = pd.Timestamp("2024-02-12T18:00:00Z")


@st.composite
def frames(draw) -> pd.DataFrame:
    n = draw(st.integers(1, 60))
    step = draw(st.sampled_from(["5min", "30min"]))
    tz = draw(st.sampled_from(["UTC", "Australia/Brisbane", "Europe/London"]))
    unit = draw(st.sampled_from(["ns", "us", "ms"]))
    idx = pd.date_range(T0, periods=n, freq=step, name="interval_start").tz_convert(tz).as_unit(unit)
    fetched = T0 + pd.Timedelta(seconds=draw(st.integers(-3600, 60 * 60 * 30)))
    if draw(st.booleans()):
        fetched = pd.Timestamp("1970-01-01", tz="UTC")  # a saved file: no issue time known
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    frame = pd.DataFrame({"import_price": rng.normal(0.3, 0.1, n), "export_price": rng.normal(0.1, 0.05, n),
                          "is_forecast": rng.random(n) < 0.5, "source": "amber",
                          "fetched_at": pd.Series(fetched, index=idx).dt.tz_convert(tz)}, index=idx)
    for col in draw(st.sets(st.sampled_from(["rrp", "price_low", "price_high"]))):
        frame[col] = rng.normal(100, 10, n)
    if draw(st.booleans()):
        frame["provenance"] = "p5min"
    return frame


@settings(max_examples=150, deadline=None)
@given(frame=frames())
def test_the_rows_are_the_forecast_and_future_intervals_in_utc(frame: pd.DataFrame) -> None:
    rows = published_rows("home", frame)
    assert list(rows.columns) == COLUMNS
    issued = pd.Timestamp(frame["fetched_at"].iloc[0]).tz_convert("UTC")
    starts = pd.DatetimeIndex(frame.index).tz_convert("UTC")
    expected = [s for s, marked in zip(starts, frame["is_forecast"], strict=True)
                if (marked or s >= issued.floor("5min")) and issued > EPOCH]
    assert [pd.Timestamp(t) for t in rows["interval_start"]] == expected
    if not expected:
        return
    assert (rows["site_id"] == "home").all() and (rows["source"] == "amber").all()
    assert (pd.to_datetime(rows["issued_at"], utc=True) == issued).all()
    lead = [round((s - issued) / pd.Timedelta(minutes=1)) for s in expected]
    assert rows["lead_minutes"].tolist() == lead
    kept = frame.set_index(starts).loc[expected]
    assert np.allclose(rows["import_price"], kept["import_price"]) and np.allclose(rows["export_price"],
                                                                                 kept["export_price"])
    for col in ("rrp", "price_low", "price_high"):
        assert (np.allclose(rows[col], kept[col]) if col in frame else rows[col].isna().all()), col
    assert (rows["stage"] == "p5min").all() if "provenance" in frame else rows["stage"].isna().all()
