"""Months are cut at local month starts and the result does not depend on how many processes ran them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from powersync_pipelines.backtest import BacktestConfig, run_backtest
from powersync_pipelines.backtest.engine import month_chunks, plan_chunks

from ._synthetic import spec, world


def test_month_chunks_follow_local_months_and_absorb_slivers():
    idx = pd.date_range("2023-12-31T14:00:00Z", "2024-03-31T13:55:00Z", freq="5min")
    chunks = month_chunks(idx, 0, len(idx), "Australia/Melbourne")
    starts = [idx[a].tz_convert("Australia/Melbourne").strftime("%Y-%m-%d %H:%M") for a, _ in chunks]
    # data starts at 01:00 local on 1 Jan (AEMO files are NEM time) and ends at 00:55 local on 1 Apr:
    # the 1-hour April sliver joins March
    assert starts == ["2024-01-01 01:00", "2024-02-01 00:00", "2024-03-01 00:00"]
    assert chunks[-1][1] == len(idx)


def test_two_processes_give_the_same_result_as_one():
    # 2 days across a local month boundary (1 March 2024 00:00 AEDT = 29 Feb 13:00Z) with a short horizon
    data = world(days=2, history_days=1.5, start="2024-02-28T13:00:00Z")
    cfg = dict(strategies=("lp", "self_consumption"), forecast="persistence", horizon_hours=3, progress=False)
    assert len(plan_chunks(data, BacktestConfig(**cfg))) == 2
    one = run_backtest(data, spec(), BacktestConfig(workers=1, **cfg))
    two = run_backtest(data, spec(), BacktestConfig(workers=2, **cfg))
    assert two.summary["workers"] == 2 and one.summary["workers"] == 1
    a = one.intervals.sort_values(["strategy", "interval_start"]).reset_index(drop=True)
    b = two.intervals.sort_values(["strategy", "interval_start"]).reset_index(drop=True)
    num = a.select_dtypes("number").columns
    assert np.allclose(a[num].to_numpy(), b[num].to_numpy(), equal_nan=True)
    assert (a["action"] == b["action"]).all()
    assert [m["month"] for m in one.summary["monthly"]] == ["2024-02", "2024-03"]


def test_progress_counts_every_simulated_step():
    data = world(days=1, history_days=1)
    seen: list[int] = []
    r = run_backtest(data, spec(), BacktestConfig(strategies=("lp",), horizon_hours=3, progress=False),
                     on_progress=seen.append)
    assert sum(seen) == r.summary["intervals"] == 288
    assert len(seen) >= 1
