"""The vectorised half-hour helpers of the tariff builder agree with their plain definitions on any plan and any
price frame: the majority action per half hour (ties to the alphabetically first, as ``Series.mode``) and the
share of 5-minute slots without a usable price."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from powersync_pipelines.tariffs.periods import _plan_actions, missing_fraction

START = pd.Timestamp("2024-02-12T20:00:00Z")
ACTIONS = ["CHARGE", "EXPORT", "IDLE", "SELF_CONSUMPTION"]


def _reference_actions(plan: pd.DataFrame) -> dict[pd.Timestamp, str]:
    buckets = pd.DatetimeIndex(plan.index).tz_convert("UTC").floor("30min")
    series = pd.Series(plan["action"].to_numpy(), index=buckets)
    return {k: str(v.mode().iloc[0]) for k, v in series.groupby(level=0)}


def _reference_missing(prices: pd.DataFrame, now: pd.Timestamp, hours: float = 24.0) -> float:
    grid = pd.date_range(now.floor("5min"), now.floor("5min") + pd.Timedelta(hours=hours), freq="5min",
                         inclusive="left")
    idx = prices.index
    good = ~(prices["import_price"].isna().to_numpy() | prices["export_price"].isna().to_numpy())
    good &= ~prices["filled"].to_numpy(dtype=bool)
    step = pd.Series(idx[good]).diff().median() if good.sum() > 1 else pd.Timedelta(minutes=5)
    step = max(pd.Timedelta(step), pd.Timedelta(minutes=5)) if pd.notna(step) else pd.Timedelta(minutes=5)
    covered = np.zeros(len(grid), dtype=bool)
    for t in idx[good]:
        covered[grid.searchsorted(t, side="left"):grid.searchsorted(t + step, side="left")] = True
    return float(1.0 - covered.mean())


@settings(max_examples=60, deadline=None)
@given(actions=st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=60), offset=st.integers(0, 5))
def test_majority_action_per_half_hour(actions: list[str], offset: int) -> None:
    idx = pd.date_range(START + pd.Timedelta(minutes=5 * offset), periods=len(actions), freq="5min")
    plan = pd.DataFrame({"action": actions}, index=idx)
    assert _plan_actions(plan) == _reference_actions(plan)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 120), step_min=st.sampled_from([5, 30]), data=st.data())
def test_missing_fraction(n: int, step_min: int, data: st.DataObject) -> None:
    idx = pd.date_range(START - pd.Timedelta(hours=2), periods=n, freq=f"{step_min}min")
    gaps = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    filled = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    prices = pd.DataFrame({"import_price": np.where(gaps, np.nan, 0.3), "export_price": 0.05,
                           "filled": filled}, index=idx)
    assert missing_fraction(prices, START) == _reference_missing(prices, START)
