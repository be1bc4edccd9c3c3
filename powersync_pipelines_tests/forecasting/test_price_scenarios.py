"""Analog price scenarios (price_model.FittedPriceModel.scenarios) and the backtest's scenario planning.

A scenario is the model's mean path plus the realised error path of an earlier forecast issued at the same
local time of day: one per recent day, most recent first, same-regime days first when asked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.backtest import BacktestConfig, ForecastOptions, make_forecast
from powersync_pipelines.backtest.engine import ChunkTask, run_chunk
from powersync_pipelines.forecasts.price_model import PriceModelConfig, fit_price_model, local_keys

from ._prices import TZ, backtest_data, rrp_series


def _calm_then_one_spike(days: int = 12) -> pd.Series:
    """Calm prices, and one 3000 $/MWh hour starting 18:00 local on the second-last day."""
    s = rrp_series(days=days, seed=11, spikes=False)
    local = s.index.tz_convert(TZ)
    day = local.normalize().unique()[-2]
    hot = (local >= day + pd.Timedelta(hours=18)) & (local < day + pd.Timedelta(hours=19))
    s[hot] = 3000.0
    return s


def test_one_scenario_per_recent_day_at_this_time_of_day_carrying_that_days_error():
    s = _calm_then_one_spike()
    as_of = s.index[-1] + pd.Timedelta(minutes=5)  # local midnight: the spike was the day before yesterday
    model = fit_price_model(s, as_of, TZ, PriceModelConfig(scenario_days=6))
    assert model.analog_resid is not None and model.analog_resid.shape[1] == model.config.horizon
    # issued the next day at 16:00 local (the scenarios' horizon runs over 18:00-19:00 two hours on)
    now = (as_of.tz_convert(TZ) + pd.Timedelta(hours=16)).tz_convert("UTC")
    path = model.forecast(now, s[s.index < as_of].iloc[-288:].to_numpy())
    _, slot, _ = local_keys(pd.DatetimeIndex([now]), TZ)
    sc = model.scenarios(path, int(slot[0]), 5)
    assert sc.shape == (5, len(path.mean))
    np.testing.assert_array_equal(sc[:, 0], path.mean[0])  # the current interval is known
    evening = slice(24, 36)  # 18:00-19:00 from 16:00
    excess = (sc[:, evening] - path.mean[evening]).mean(axis=1)
    # most recent first: yesterday (calm), then the spike day with its ~3000 $/MWh error, then calm days
    assert excess[1] > 2000
    assert np.all(np.abs(np.delete(excess, 1)) < 300)


def test_no_analogs_kept_by_default_and_none_returned():
    s = rrp_series(days=6, seed=2)
    model = fit_price_model(s, s.index[-1], TZ)
    assert model.analog_resid is None
    path = model.forecast(s.index[-2], s.iloc[:-1].to_numpy())
    assert model.scenarios(path, 0, 4) is None


def test_same_regime_analogs_come_first():
    """Calm now: the calm days' analogs come before the day after the spike (a hot issue time)."""
    s = _calm_then_one_spike(days=12)
    cut = s.index[-1] - pd.Timedelta(hours=5, minutes=55)  # 18:05 the evening of the last day (spike day + 1)
    model = fit_price_model(s, cut, TZ, PriceModelConfig(scenario_days=8))
    assert model.analog_hot.any() and not model.analog_hot.all()
    now = cut - pd.Timedelta(minutes=5)
    path = model.forecast(now, s[s.index <= now].to_numpy())
    slot = int(local_keys(pd.DatetimeIndex([now]), TZ)[1][0])
    by_age = model.scenarios(path, slot, 3)
    calm_first = model.scenarios(path, slot, 3, hot=False)
    hot_first = model.scenarios(path, slot, 3, hot=True)
    assert not np.array_equal(by_age, calm_first)
    assert np.array_equal(by_age[0], hot_first[0])  # yesterday's 18:00 issue was inside the spike: hot


def test_backtest_scenarios_are_blind_to_the_future_and_drive_the_scenario_planner():
    s = rrp_series(days=12, spike_rate=0.2)
    data = backtest_data(s, history_days=8, days=1)
    i = data.i0 + 100
    future = s.copy()
    future[future.index > s.index[i]] += 900.0
    opts = ForecastOptions(params=(("scenarios", 4),))
    fa = make_forecast("learned", data, opts)
    fb = make_forecast("learned", backtest_data(future, history_days=8, days=1), opts)
    sa, sb = fa.scenario_prices(i, 576), fb.scenario_prices(i, 576)
    ia, ea, ib, eb = sa.import_price, sa.export_price, sb.import_price, sb.export_price
    assert ia.shape == ea.shape == (4, 576)
    np.testing.assert_array_equal(ia, ib)
    np.testing.assert_array_equal(ea, eb)
    assert np.all(ia[:, 0] == data.import_price[i])  # the current interval's known price
    assert ForecastOptions().param("scenarios") is None
    # the replay plans over the scenarios: every step solved by the scenario LP, none fell back
    from powersync_pipelines.backtest.battery import BatterySpec

    spec = BatterySpec(capacity_kwh=13.5, max_charge_kw=5.0, max_discharge_kw=5.0, charge_efficiency=0.95,
                       discharge_efficiency=0.95, reserve=0.1, soc_initial=0.5)
    cfg = BacktestConfig(strategies=("lp",), forecast="learned", forecast_options=opts, progress=False)
    res = run_chunk(ChunkTask(data=data, spec=spec, config=cfg, sim_start=data.i0))
    assert res.fallbacks == 0 and res.replans == data.i1 - data.i0
    soc = res.traces["lp"]["soc"]
    assert soc.min() >= 0.1 - 1e-9 and soc.max() <= 1.0 + 1e-9
    assert np.abs(res.traces["lp"]["charge_kw"]).max() <= 5.0 + 1e-9


@pytest.mark.parametrize("bad", [-1, 0])
def test_scenarios_off_when_not_positive(bad):
    s = rrp_series(days=10)
    data = backtest_data(s, history_days=8, days=1)
    fc = make_forecast("learned", data, ForecastOptions(params=(("scenarios", bad),)))
    assert fc.scenario_prices(data.i0, 576) is None


def test_cli_text_options_parse_and_bad_ones_are_named():
    """``--forecast-param`` values arrive as text."""
    s = rrp_series(days=10)
    data = backtest_data(s, history_days=8, days=1)

    def fc(**kw):
        return make_forecast("learned", data, ForecastOptions(params=tuple((k, str(v)) for k, v in kw.items())))

    f = fc(scenarios=3, scenario_regime="false", scenario_lift="0.4")
    assert f.n_scenarios == 4 and not f.scenario_regime and f.lift_weight == pytest.approx(0.4)
    f = fc(scenarios=3, scenario_lift="true")
    assert f.scenario_lift and f.lift_weight is None
    sc = f.scenario_prices(data.i0, 576)
    assert sc.import_price.shape == (4, 576) and sc.weights is None
    with pytest.raises(ValueError, match="scenario_lift"):
        fc(scenarios=3, scenario_lift="1.5")
    with pytest.raises(ValueError, match="expected true or false"):
        fc(scenarios=3, scenario_regime="maybe")
    with pytest.raises(ValueError, match="scenarios_when"):
        fc(scenarios=3, scenarios_when="sometimes")
    with pytest.raises(ValueError, match="do not combine"):
        fc(scenarios=3, scenario_lift="0.5", scenario_split="300")


def test_scenario_split_adds_the_expected_path_as_a_weightless_chain_and_reveals_surprises_when_they_start():
    s = _calm_then_one_spike(days=12)
    data = backtest_data(s, history_days=11, days=1)
    fc = make_forecast("learned", data, ForecastOptions(params=(("scenarios", 3), ("scenario_split", 1000))))
    # 16:00 local on the last day: the day-before analog carries the 18:00 spike error (>= 1000 $/MWh)
    local = data.index.tz_convert(TZ)
    i = int(np.flatnonzero((local.hour == 16) & (local.minute == 0))[-1])
    sc = fc.scenario_prices(i, 576)
    assert sc.import_price.shape == (4, 576)
    np.testing.assert_allclose(sc.weights, [0.0, 1 / 3, 1 / 3, 1 / 3])
    assert sc.split_at[0] == 1
    spiky = int(np.argmax(sc.import_price[1:, 24:36].max(axis=1))) + 1
    assert 22 <= sc.split_at[spiky] <= 26  # 18:00 is 24 steps on (the analog sits within half an hour)
    # the older analogs meet the same spike a day later in their horizon (or never): only then revealed
    assert all(sc.split_at[c] >= 288 for c in range(1, 4) if c != spiky)
