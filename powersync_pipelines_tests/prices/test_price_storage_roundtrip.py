"""Property: any valid price frame round-trips through DuckDB unchanged, and re-fetching a window (again, or
overlapping) never duplicates rows; the newer fetch wins where intervals overlap."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powersync_pipelines.schemas import PRICE_MAX, PRICE_MIN, SPIKE_STATUSES, finalize_price_frame
from powersync_pipelines.storage import HistoryStore

_ids = itertools.count()
prices = st.floats(PRICE_MIN, PRICE_MAX, allow_nan=False, allow_infinity=False)
maybe = st.one_of(st.just(float("nan")), st.floats(-1e4, 1e5, allow_nan=False, allow_infinity=False))


@st.composite
def price_frames(draw, with_rrp: bool | None = None) -> pd.DataFrame:
    n = draw(st.integers(1, 60))
    step = draw(st.sampled_from([5, 30]))
    start = pd.Timestamp("2024-01-01T00:00:00Z") + pd.Timedelta(minutes=step * draw(st.integers(0, 200_000)))
    idx = pd.date_range(start, periods=n, freq=f"{step}min", tz="UTC", name="interval_start")
    df = pd.DataFrame({
        "import_price": draw(st.lists(prices, min_size=n, max_size=n)),
        "export_price": draw(st.lists(prices, min_size=n, max_size=n)),
        "spike_status": draw(st.lists(st.sampled_from(SPIKE_STATUSES), min_size=n, max_size=n)),
        "is_forecast": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        "price_low": draw(st.lists(maybe, min_size=n, max_size=n)),
        "price_high": draw(st.lists(maybe, min_size=n, max_size=n)),
        "source": draw(st.sampled_from(["amber", "aemo", "octopus", "flow_power", "globird", "ä-ünïcode"])),
    }, index=idx)
    if with_rrp if with_rrp is not None else draw(st.booleans()):
        df["rrp"] = draw(st.lists(maybe, min_size=n, max_size=n))
    fetched = pd.Timestamp("2024-01-01T00:00:00Z") + pd.Timedelta(seconds=draw(st.integers(0, 10**8)))
    return finalize_price_frame(df, source="unused", fetched_at=fetched)


@pytest.fixture(scope="module")
def shared_store():
    with tempfile.TemporaryDirectory() as d:
        yield HistoryStore(Path(d) / "prices.duckdb")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=price_frames())
def test_any_valid_frame_round_trips_unchanged(shared_store, frame):
    site = f"site-{next(_ids)}"
    assert shared_store.upsert_prices(site, frame) == len(frame)
    back = shared_store.read_prices(site)
    pd.testing.assert_frame_equal(back[frame.columns], frame, check_freq=False)
    if "rrp" not in frame:
        assert back["rrp"].isna().all()
    assert shared_store.upsert_prices(site, frame) == len(frame)  # the same fetch again
    assert len(shared_store.read_prices(site)) == len(frame)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=price_frames(with_rrp=True), cut=st.floats(0.0, 1.0), bump=st.floats(0.001, 0.5))
def test_an_overlapping_refetch_adds_only_new_intervals_and_the_newer_values_win(shared_store, frame, cut, bump):
    site = f"site-{next(_ids)}"
    shared_store.upsert_prices(site, frame)
    k = int(cut * len(frame))
    step = frame.index[1] - frame.index[0] if len(frame) > 1 else pd.Timedelta(minutes=5)
    newer = frame.iloc[k:].copy()
    newer.index = newer.index + step  # the window moved on by one interval
    newer["import_price"] = np.clip(newer["import_price"] + bump, None, PRICE_MAX)
    newer = finalize_price_frame(newer, source="unused")
    shared_store.upsert_prices(site, newer)
    back = shared_store.read_prices(site)
    union = frame.index.union(newer.index)
    assert back.index.equals(union) and back.index.is_unique
    np.testing.assert_array_equal(back.loc[newer.index, "import_price"].to_numpy(), newer["import_price"].to_numpy())
    only_old = frame.index.difference(newer.index)
    np.testing.assert_array_equal(back.loc[only_old, "import_price"].to_numpy(),
                                  frame.loc[only_old, "import_price"].to_numpy())
