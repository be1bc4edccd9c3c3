"""Daily strategy selection: follow the candidate that would have saved the most on the trailing days, with a
margin so near ties do not flap; walk-forward (a day's choice reads only days before it); the selected backtest
plans each day with that day's choice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powersync_pipelines.backtest import BacktestConfig, BacktestInputError, ForecastOptions, run_backtest
from powersync_pipelines.backtest.battery import BatterySpec
from powersync_pipelines.backtest.learned import LearnedOptions
from powersync_pipelines.backtest.selection import (
    SelectionPlan,
    SelectionRule,
    candidates,
    choose,
    local_days,
    run_selected,
    walk_forward,
)

from ..forecasting._prices import backtest_data, rrp_series

NAMES = ("learned", "learned_no_reserve", "persistence")
SPEC = BatterySpec(capacity_kwh=13.5, max_charge_kw=5.0, max_discharge_kw=5.0, charge_efficiency=0.95,
                   discharge_efficiency=0.95, reserve=0.1, soc_initial=0.5)


def test_the_best_candidate_is_followed_only_beyond_the_margin():
    rule = SelectionRule(margin=0.1)
    assert choose({"learned": 10.0, "learned_no_reserve": 10.5, "persistence": 3.0}, "learned", rule) == "learned"
    assert choose({"learned": 10.0, "learned_no_reserve": 11.5, "persistence": 3.0}, "learned", rule) == \
        "learned_no_reserve"
    # once there, it stays through a near tie the other way (hysteresis)
    assert choose({"learned": 10.5, "learned_no_reserve": 10.0, "persistence": 3.0}, "learned_no_reserve",
                  rule) == "learned_no_reserve"


def test_a_floor_in_the_batterys_scale_keeps_cents_from_switching_a_calm_week():
    rule = SelectionRule(margin=0.05, min_gain_per_kwh_day=0.01)  # 13.5 kWh x 7 days: $0.945
    calm = {"learned": 5.5, "learned_no_reserve": 5.9}  # 7 % better, but 40 cents
    assert choose(calm, "learned", SelectionRule(margin=0.05, min_gain_per_kwh_day=0.0), days_seen=7,
                  capacity_kwh=13.5) == "learned_no_reserve"
    assert choose(calm, "learned", rule, days_seen=7, capacity_kwh=13.5) == "learned"
    crisis = {"learned": 20.0, "learned_no_reserve": 45.0}
    assert choose(crisis, "learned", rule, days_seen=7, capacity_kwh=13.5) == "learned_no_reserve"
    assert choose(calm, "learned", rule, days_seen=7) == "learned_no_reserve"  # no capacity given: no floor


def test_losses_are_compared_by_their_size_and_missing_values_are_ignored():
    rule = SelectionRule(margin=0.1)
    # the current one loses $10; another loses $2: far better than 10 % of $10
    assert choose({"learned": -10.0, "persistence": -2.0}, "learned", rule) == "persistence"
    assert choose({"learned": float("nan"), "persistence": 1.0}, "learned", rule) == "persistence"
    assert choose({}, "persistence", rule) == "learned"  # nothing replayed: the default


def test_too_few_realised_days_keep_the_default():
    rule = SelectionRule(min_days=2)
    assert choose({"learned": 0.0, "persistence": 9.0}, "persistence", rule, days_seen=1) == "learned"
    assert choose({"learned": 0.0, "persistence": 9.0}, "learned", rule, days_seen=2) == "persistence"


def test_an_unusable_rule_is_refused_with_its_name():
    with pytest.raises(BacktestInputError, match="trailing_days"):
        SelectionRule(trailing_days=0.5)
    with pytest.raises(BacktestInputError, match="margin"):
        SelectionRule(margin=-0.1)


def _daily(values: dict[str, list[float]], start: str = "2024-05-01") -> pd.DataFrame:
    n = len(next(iter(values.values())))
    idx = pd.date_range(start, periods=n, freq="D", tz="Australia/Melbourne")
    return pd.DataFrame(values, index=idx)


def test_walk_forward_reads_only_the_trailing_days_before_each_day():
    # persistence wins days 0-4 by far, then learned wins from day 5 on
    daily = _daily({"learned": [0, 0, 0, 0, 0, 5, 5, 5, 5, 5, 5, 5], "persistence": [3, 3, 3, 3, 3, 0, 0, 0, 0, 0, 0, 0]})
    choice = walk_forward(daily, list(daily.index), SelectionRule(trailing_days=3, margin=0.0, min_days=2))
    assert list(choice[:2]) == ["learned", "learned"]  # fewer than 2 days seen: the default
    assert list(choice[2:6]) == ["persistence"] * 4  # day 5 still sees days 2-4 only
    assert choice.iloc[6] == "persistence"  # days 3, 4, 5: 6 vs 5
    assert choice.iloc[7] == "learned"  # days 4, 5, 6: 3 vs 10
    # changing a day's savings never changes that day's own choice or any earlier one
    later = daily.copy()
    later.iloc[8:] = [[0, 99]] * 4
    np.testing.assert_array_equal(walk_forward(later, list(daily.index), SelectionRule(3, 0.0, 2))[:9],
                                  choice[:9])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-50, 50), st.floats(-50, 50), st.floats(-50, 50)), min_size=3, max_size=30),
       st.floats(0, 0.5))
def test_the_choice_is_always_a_candidate_and_never_far_behind_the_best(rows, margin):
    daily = _daily({name: [r[k] for r in rows] for k, name in enumerate(NAMES)})
    rule = SelectionRule(trailing_days=5, margin=margin, min_days=1)
    choice = walk_forward(daily, list(daily.index), rule)
    assert set(choice) <= set(NAMES)
    for k, day in enumerate(daily.index[1:], start=1):
        past = daily[(daily.index < day) & (daily.index >= day - pd.Timedelta(days=5))].sum()
        chosen = past[choice.iloc[k]]
        # the kept candidate is at most the margin (or a cent) behind the best
        assert past.max() - chosen <= max(margin * abs(chosen), 0.01) + 1e-9


def _data(days: float = 6):
    s = rrp_series(days=days + 5, seed=4, spike_rate=0.2)
    return backtest_data(s, history_days=5, days=days)


def _cfg() -> BacktestConfig:
    return BacktestConfig(strategies=("lp",), workers=1, progress=False)


def _learned() -> LearnedOptions:
    return LearnedOptions(retail=(0.12 / 1.1, 0.10, 0.0, 1.0, 0.0), select=False)


def test_a_plan_that_always_chooses_one_candidate_is_that_candidate():
    data = _data(days=2)
    cands = candidates(_learned())
    days = tuple(d.tz_convert("UTC") for d in local_days(data))
    for name in ("persistence", "learned_no_reserve"):
        plan = SelectionPlan(cands, days, (name,) * len(days))
        selected = run_backtest(data, SPEC, BacktestConfig(strategies=("lp",), workers=1, progress=False,
                                                           forecast="selected",
                                                           forecast_options=ForecastOptions(model_options=plan)))
        c = next(c for c in cands if c.name == name)
        alone = run_backtest(data, SPEC, BacktestConfig(strategies=("lp",), workers=1, progress=False,
                                                        forecast=c.forecast,
                                                        forecast_options=ForecastOptions(model_options=c.options)))
        assert selected.summary["cost"] == pytest.approx(alone.summary["cost"], abs=1e-9)


def test_the_selected_backtest_reports_its_choices_and_each_candidates_own_savings():
    data = _data(days=4)
    result = run_selected(data, SPEC, _cfg(), _learned(), SelectionRule(trailing_days=2, margin=0.05, min_days=1))
    sel = result.summary["selection"]
    assert set(sel["candidates"]) == set(NAMES)
    assert len(sel["choices"]) == 4 and set(sel["choices"].values()) <= set(NAMES)
    assert sum(c["days_chosen"] for c in sel["candidates"].values()) == 4
    for c in sel["candidates"].values():
        assert np.isfinite(c["savings"])
    assert sel["trailing_days"] == 2 and sel["margin"] == 0.05
    # the run itself: the accounted window only, as a single-strategy backtest reports it
    assert result.summary["intervals"] == 4 * 288


def test_when_the_rule_never_fires_one_replay_serves_both_learned_candidates():
    s = rrp_series(days=9, seed=4, spikes=False)
    s = s.clip(upper=250.0)  # nothing reaches the gate's 300 $/MWh
    data = backtest_data(s, history_days=5, days=2)
    result = run_selected(data, SPEC, _cfg(), _learned(), SelectionRule(trailing_days=2, margin=0.05, min_days=1))
    daily = result.summary["selection"]["daily_savings"]
    assert daily["learned"] == daily["learned_no_reserve"]
    # the reuse is exact: alone, the two candidates replay to the same cent on the same data
    costs = []
    for c in candidates(_learned())[:2]:
        alone = run_backtest(data, SPEC, BacktestConfig(strategies=("lp",), workers=1, progress=False,
                                                        forecast="learned",
                                                        forecast_options=ForecastOptions(model_options=c.options)))
        costs.append(alone.summary["cost"])
    assert costs[0] == costs[1]
