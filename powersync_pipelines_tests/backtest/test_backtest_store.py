"""Results land in the history (DuckDB and PostgreSQL) once per key, and the views answer the questions users ask."""

from __future__ import annotations

import pytest

from powersync_pipelines.backtest import BacktestConfig, run_backtest, write_results

from ._synthetic import spec, world


@pytest.fixture(scope="module")
def result():
    data = world(days=1, start="2024-03-10T13:00:00Z")
    return run_backtest(data, spec(), BacktestConfig(strategies=("lp", "self_consumption"), forecast="persistence",
                                                      progress=False))


def test_rewriting_a_run_replaces_rows_and_views_agree_with_the_summary(any_store, result):
    store = any_store
    write_results(store, "home", result, run_id="r1")
    write_results(store, "home", result, run_id="r2")  # a retried run: same keys, no duplicates
    n = store.query("SELECT count(*) AS n FROM backtest_intervals").n[0]
    assert n == 4 * 288
    assert set(store.query("SELECT DISTINCT run_id FROM backtest_intervals").run_id) == {"r2"}
    s = result.summary
    m = store.query("SELECT * FROM backtest_monthly WHERE strategy = 'lp'")
    assert len(m) == 1 and m.month[0] == "2024-03"
    assert m.cost[0] == pytest.approx(s["cost"], abs=1e-4)
    assert m.savings[0] == pytest.approx(s["savings"], abs=1e-4)
    assert m.capture_ratio[0] == pytest.approx(s["capture_ratio"], abs=1e-3)
    assert m.savings_vs_self_consumption[0] == pytest.approx(s["savings"] - s["strategies"]["self_consumption"]["savings"], abs=1e-4)
    d = store.query("SELECT local_date, sum(cost) AS c FROM backtest_daily WHERE strategy = 'lp' GROUP BY 1")
    assert d.c.sum() == pytest.approx(s["cost"], abs=1e-4)
    assert str(d.local_date[0])[:10] == "2024-03-11"  # 13:00Z is midnight in Melbourne (AEDT)
    fe = store.query("SELECT * FROM backtest_forecast_error")
    assert fe.n_1h[0] == 288 - 12 and fe.mae_1h[0] >= 0
    sp = store.query("SELECT * FROM backtest_spike_revenue WHERE strategy = 'lp'")
    assert sp.spike_intervals[0] == 0 and sp.total_savings[0] == pytest.approx(s["savings"], abs=1e-4)
    runs = store.query("SELECT run_id, capture_ratio FROM backtest_runs ORDER BY run_id")
    assert list(runs.run_id) == ["r1", "r2"]


def test_readme_queries_run(any_store, result):
    from powersync_pipelines.backtest.queries import README_QUERIES

    store = any_store
    write_results(store, "demo", result, run_id="r1")
    by_month = store.query(README_QUERIES["savings by month"])
    assert list(by_month.strategy) == ["lp", "perfect_foresight", "self_consumption"]
    assert by_month.set_index("strategy").loc["lp", "savings"] == pytest.approx(result.summary["savings"], abs=0.01)
    top = store.query(README_QUERIES["the 10 most valuable intervals"])
    assert len(top) == 10 and top.saved.is_monotonic_decreasing
    loss = store.query(README_QUERIES["charging from the grid at a loss"])
    lp = result.intervals[result.intervals.strategy == "lp"]
    assert loss.grid_charge_intervals[0] == int((lp.action == "CHARGE").sum())
    assert 0 <= loss.at_a_loss[0] <= loss.grid_charge_intervals[0]
