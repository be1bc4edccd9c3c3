"""Forecast models know only what the live system would have known, are reproducible, and are pluggable."""

from __future__ import annotations

import numpy as np
import pytest

from powersync_pipelines.backtest import (
    BacktestConfig,
    BacktestInputError,
    ForecastModel,
    ForecastOptions,
    available_forecasts,
    make_forecast,
    register_forecast,
    run_backtest,
)
from powersync_pipelines.backtest.forecasts import FORECASTS

from ._synthetic import spec, world


def _tamper_future(data, i):
    """A copy of the data whose future (after slot i) is garbage."""
    import copy

    d = copy.deepcopy(data)
    rng = np.random.default_rng(1)
    for name in ("import_price", "export_price", "load_kw", "solar_kw"):
        arr = getattr(d, name)
        arr[i + 1:] = rng.uniform(0, 5, len(arr) - i - 1)
    return d


def test_persistence_never_reads_the_future():
    data = world(days=2, history_days=3)
    i = data.i0 + 100
    fc_a = make_forecast("persistence", data)
    fc_b = make_forecast("persistence", _tamper_future(data, i))
    for a, b in zip((*fc_a.prices(i, 576), *fc_a.load_solar(i, 576)), (*fc_b.prices(i, 576), *fc_b.load_solar(i, 576)),
                    strict=True):
        assert np.array_equal(a, b)


def test_persistence_is_yesterday_then_the_day_before():
    data = world(days=2, history_days=3)
    i = data.i0 + 10
    imp, _ = make_forecast("persistence", data).prices(i, 576)
    assert imp[0] == data.import_price[i]  # the current interval's price is known
    assert imp[1] == data.import_price[i + 1 - 288]
    assert imp[288] == data.import_price[i]  # exactly one day ahead: today's value at this time
    assert imp[289] == data.import_price[i + 289 - 576]


def test_perfect_pads_beyond_the_data_with_the_last_day():
    data = world(days=1, lookahead_days=0.5)
    i = data.n - 10
    imp, _ = make_forecast("perfect", data).prices(i, 50)
    assert np.array_equal(imp[:10], data.import_price[i:])
    assert imp[10] == data.import_price[data.n - 288]


def test_noisy_is_seeded_and_exact_now():
    data = world(days=1)
    i = data.i0
    a = make_forecast("noisy", data, ForecastOptions(noise=0.3, seed=7)).prices(i, 576)[0]
    b = make_forecast("noisy", data, ForecastOptions(noise=0.3, seed=7)).prices(i, 576)[0]
    c = make_forecast("noisy", data, ForecastOptions(noise=0.3, seed=8)).prices(i, 576)[0]
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a[0] == data.import_price[i] and not np.allclose(a[12:], data.import_price[i + 12:i + 576])


def test_provider_forecast_needs_published_data():
    with pytest.raises(BacktestInputError, match="carries no published forecasts"):
        make_forecast("provider", world(days=1))


def test_unknown_model_names_the_choices():
    with pytest.raises(BacktestInputError, match="unknown forecast model 'crystal_ball' .*persistence"):
        make_forecast("crystal_ball", world(days=1))


def test_a_plugged_in_model_drives_the_replay():
    class Flat(ForecastModel):
        """Knows nothing: tomorrow costs what now costs."""

        def prices(self, i, n):
            return np.full(n, self.data.import_price[i]), np.full(n, self.data.export_price[i])

    try:
        register_forecast("flat_test")(Flat)
        assert "flat_test" in available_forecasts()
        data = world(days=1)
        cfg = dict(strategies=("lp",), progress=False)
        flat = run_backtest(data, spec(), BacktestConfig(forecast="flat_test", **cfg)).summary
        perfect = run_backtest(data, spec(), BacktestConfig(forecast="perfect", **cfg)).summary
        assert flat["forecast_model"] == "flat_test"
        assert flat["cost"] > perfect["cost"]  # a flat forecast sees no spread worth cycling for
    finally:
        FORECASTS.pop("flat_test", None)
