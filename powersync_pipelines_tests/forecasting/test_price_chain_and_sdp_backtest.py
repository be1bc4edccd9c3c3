"""The price chain (forecasts.price_chain) and ``--forecast learned planning=sdp`` in the backtest.

The chain is fitted from history before ``as_of`` only, its rows are probabilities, recent transitions
count more than old ones, and a replay with ``planning=sdp`` plans every step by the SDP within the
battery's limits and without seeing the future.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.backtest import BacktestConfig, ForecastOptions, make_forecast
from powersync_pipelines.backtest.battery import BatterySpec
from powersync_pipelines.backtest.engine import ChunkTask, run_chunk
from powersync_pipelines.forecasts.price_chain import PriceChainConfig, fit_price_chain
from powersync_pipelines.forecasts.price_model import PriceModelError

from ._prices import TZ, backtest_data, rrp_series


def test_rows_are_probabilities_and_bin_values_sit_in_their_bins():
    s = rrp_series(days=10, spike_rate=0.2)
    chain = fit_price_chain(s, s.index[-1], TZ)
    np.testing.assert_allclose(chain.trans.sum(axis=2), 1.0)
    assert chain.trans.shape == (24, chain.n_bins, chain.n_bins) and (chain.trans >= 0).all()
    seen = np.unique(chain.bin_of(s.to_numpy()))
    assert np.array_equal(chain.bin_of(chain.values[seen]), seen)
    dist = chain.distribution(3000.0, s.index[:12])
    np.testing.assert_allclose(dist.sum(axis=1), 1.0)
    assert dist[0, chain.bin_of(3000.0)] == 1.0


def test_fit_is_blind_to_data_from_as_of_on():
    s = rrp_series(days=10, spike_rate=0.2)
    as_of = s.index[-600]
    changed = s.copy()
    changed[changed.index >= as_of] = 9000.0
    a, b = fit_price_chain(s, as_of, TZ), fit_price_chain(changed, as_of, TZ)
    np.testing.assert_array_equal(a.trans, b.trans)
    np.testing.assert_array_equal(a.values, b.values)


def test_recent_spikes_weigh_more_than_old_ones():
    """The same spike count, once in the oldest days and once in the latest: the latest lifts the odds of
    leaving the ordinary bins for the spike bins more (half-life 3 days over a 20-day window)."""
    calm = rrp_series(days=20, seed=4, spikes=False)
    local = calm.index.tz_convert(TZ)
    days = local.normalize().unique()

    def spiked(which: list) -> pd.Series:
        x = calm.copy()
        for d in which:
            x[(local >= d + pd.Timedelta(hours=18)) & (local < d + pd.Timedelta(hours=19))] = 3000.0
        return x

    cfg = PriceChainConfig(fit_days=25, half_life_days=3.0)
    as_of = calm.index[-1] + pd.Timedelta(minutes=5)
    old = fit_price_chain(spiked(list(days[1:4])), as_of, TZ, cfg)
    new = fit_price_chain(spiked(list(days[-4:-1])), as_of, TZ, cfg)
    hi = old.bin_of(3000.0)
    assert new.trans[:, :hi, hi].sum() > 2 * old.trans[:, :hi, hi].sum()


def test_too_little_history_is_named():
    s = rrp_series(days=1)
    with pytest.raises(PriceModelError, match="at least"):
        fit_price_chain(s, s.index[-1], TZ)
    with pytest.raises(PriceModelError, match="timezone-aware"):
        fit_price_chain(s.tz_convert(None), s.index[-1].tz_convert(None), TZ)


def test_backtest_with_planning_sdp_is_blind_to_the_future_and_stays_within_limits():
    s = rrp_series(days=10, spike_rate=0.3)
    data = backtest_data(s, history_days=8, days=1)
    opts = ForecastOptions(params=(("planning", "sdp"),))
    i = data.i0 + 100
    future = s.copy()
    future[future.index > s.index[i]] += 900.0
    fa = make_forecast("learned", data, opts)
    fb = make_forecast("learned", backtest_data(future, history_days=8, days=1), opts)
    ca, cb = fa.price_chain(i, 576), fb.price_chain(i, 576)
    assert fa.uses_chain and ca is not None
    np.testing.assert_array_equal(ca.import_price, cb.import_price)
    np.testing.assert_array_equal(ca.trans, cb.trans)
    assert ca.current_import == data.import_price[i]
    with pytest.raises(ValueError, match="planning"):
        make_forecast("learned", data, ForecastOptions(params=(("planning", "dp"),)))

    spec = BatterySpec(capacity_kwh=13.5, max_charge_kw=5.0, max_discharge_kw=5.0, charge_efficiency=0.95,
                       discharge_efficiency=0.95, reserve=0.1, soc_initial=0.5)
    cfg = BacktestConfig(strategies=("lp",), forecast="learned", forecast_options=opts, progress=False)
    res = run_chunk(ChunkTask(data=data, spec=spec, config=cfg, sim_start=data.i0))
    tr = res.traces["lp"]
    assert res.fallbacks == 0
    assert tr["soc"].min() >= 0.1 - 1e-9 and tr["soc"].max() <= 1.0 + 1e-9
    assert np.abs(tr["charge_kw"]).max() <= 5.0 + 1e-9
    # it uses the battery: charges in the cheap midday and discharges in the evening peak or spikes
    assert tr["charge_kw"].max() > 1.0 and tr["soc"].max() - tr["soc"].min() > 0.3


def test_sdp_when_hands_the_spike_regime_back_to_the_reserve_rule():
    s = rrp_series(days=10, spike_rate=0.3)
    data = backtest_data(s, history_days=8, days=1)
    fc = make_forecast("learned", data, ForecastOptions(params=(("planning", "sdp"), ("sdp_when", "no_reserve"))))
    i_open = next(i for i in range(data.i0, data.i1) if fc.reserve_open[i])
    assert fc.price_chain(i_open, 576) is None  # the LP plans on the reserve-rule path
    calm = make_forecast("learned", data, ForecastOptions(params=(("planning", "sdp"), ("sdp_when", "calm"))))
    assert all(calm.price_chain(i, 12) is None for i in range(data.i0, data.i1, 24) if not calm.calm[i])
    with pytest.raises(ValueError, match="sdp_when"):
        make_forecast("learned", data, ForecastOptions(params=(("planning", "sdp"), ("sdp_when", "spiky"))))


def test_sdp_planner_counts_steps_the_lp_planned_and_resolves_a_stale_policy():
    from powersync_pipelines.backtest.planners import SdpPlanner

    s = rrp_series(days=10, spike_rate=0.3)
    data = backtest_data(s, history_days=8, days=1)
    fc = make_forecast("learned", data, ForecastOptions(params=(("planning", "sdp"),)))
    spec = BatterySpec(capacity_kwh=13.5, max_charge_kw=5.0, max_discharge_kw=5.0, charge_efficiency=0.95,
                       discharge_efficiency=0.95, reserve=0.1, soc_initial=0.5)
    planner = SdpPlanner(spec, 576, every=6)
    i = data.i0
    load, solar = fc.load_solar(i, 576)
    planner.first_chain(data.index[i], fc.price_chain(i, 576), solar, load, 0.5)
    planner.first_chain(data.index[i + 3], fc.price_chain(i + 3, 576), solar, load, 0.5)
    assert planner.solves == 1
    planner.first_chain(data.index[i + 8], fc.price_chain(i + 8, 576), solar, load, 0.5)  # 8 steps on: stale
    assert planner.solves == 2
