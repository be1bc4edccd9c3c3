"""``--forecast learned`` from the CLI path: the model also learns from the ``--prices`` sources before the
window (not only the ~3 days the engine keeps), never from the window itself, and an explicit ``history``
option or a non-learned model is left as it was."""

from __future__ import annotations

import pandas as pd
import pytest

from powersync_pipelines.backtest import BacktestConfig, ForecastOptions, make_forecast
from powersync_pipelines.backtest.runner import load_data, site_learned_options
from powersync_pipelines.config import parse_sites
from powersync_pipelines.paths import DATA_DIR, shared_real_data

TZ = "Australia/Melbourne"


def _site():
    return parse_sites({"sites": [{
        "id": "h", "timezone": TZ,
        "provider": {"kind": "aemo", "region": "VIC1"},
        "battery": {"kind": "simulated", "capacity_kwh": 13.5, "max_charge_kw": 5.0, "max_discharge_kw": 5.0},
        "load": {"profile": str(DATA_DIR / "profiles" / "ausgrid_customer12.csv")},
    }]}).get("h")


def test_learned_models_without_explicit_history_get_the_price_sources():
    site = _site()
    learned = site_learned_options(ForecastOptions(), site, ["a.csv", "dir"])
    assert learned.history_sources == ("a.csv", "dir")
    assert learned.region == "VIC1"
    explicit = site_learned_options(ForecastOptions(params=(("history", "h.csv"),)), site, ["a.csv"])
    assert explicit.history == "h.csv" and explicit.history_sources == ()


def test_the_learned_model_fits_on_the_sources_before_the_window():
    real = shared_real_data()
    folder = real / "aemo/price_and_demand/VIC1" if real else None
    if folder is None or not (folder / "PRICE_AND_DEMAND_202403_VIC1.csv").exists():
        pytest.skip("../shared/data/real AEMO VIC1 2024-01..03 not present")
    site = _site()
    start, end = pd.Timestamp("2024-03-10", tz=TZ), pd.Timestamp("2024-03-11", tz=TZ)
    learned = site_learned_options(ForecastOptions(), site, [str(folder)])
    data = load_data(site, [str(folder)], start=start, end=end)
    fc = make_forecast("learned", data, ForecastOptions(model_options=learned))
    assert fc.history is not None and fc.history.index.max() < data.index[0]
    model = fc.model_for(data.i0)
    assert model is not None and model.train_end < start
    # The default 56-day window is filled from the files, far beyond the engine's own few days.
    assert model.n_train >= 50 * 288


def test_forecast_learned_plans_with_the_daily_selection_unless_switched_off():
    real = shared_real_data()
    folder = real / "aemo/price_and_demand/VIC1" if real else None
    if folder is None or not (folder / "PRICE_AND_DEMAND_202403_VIC1.csv").exists():
        pytest.skip("../shared/data/real AEMO VIC1 2024-03 not present")
    from powersync_pipelines.backtest import backtest_site

    site = _site()
    start, end = pd.Timestamp("2024-03-10", tz=TZ), pd.Timestamp("2024-03-11", tz=TZ)
    cfg = BacktestConfig(strategies=("lp",), forecast="learned", workers=1, progress=False,
                         forecast_options=ForecastOptions(params=(("select_days", "2"),)))
    s = backtest_site(site, [str(folder)], cfg, start=start, end=end).summary
    assert s["forecast_model"] == "learned"
    sel = s["selection"]
    assert sel["trailing_days"] == 2.0 and list(sel["choices"]) == ["2024-03-10"]
    assert set(sel["candidates"]) == {"learned", "learned_no_reserve", "persistence"}
    assert len(sel["daily_savings"]["persistence"]) == 3  # the two trailing days and the window's day
    alone = backtest_site(site, [str(folder)], BacktestConfig(
        strategies=("lp",), forecast="learned", workers=1, progress=False,
        forecast_options=ForecastOptions(params=(("select", "false"),))), start=start, end=end).summary
    assert "selection" not in alone and alone["forecast_model"] == "learned"


def test_an_unknown_learned_option_is_a_clear_error():
    from powersync_pipelines.backtest import BacktestInputError, backtest_site

    site = _site()
    cfg = BacktestConfig(forecast="learned", forecast_options=ForecastOptions(params=(("scenarios", "7"),)))
    with pytest.raises(BacktestInputError, match="unknown learned-model option.*scenarios"):
        backtest_site(site, ["nowhere.csv"], cfg)
