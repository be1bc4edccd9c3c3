"""The daily ``strategy_selection`` asset on a real DuckDB file: every candidate is replayed over the site's
stored trailing days, the choice is stored once per local day, and the live price blend follows it."""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.backtest.forecasts import ForecastOptions
from powersync_pipelines.backtest.learned import LearnedForecast
from powersync_pipelines.backtest.live_selection import _learned_options, realised_data, select_for_site
from powersync_pipelines.backtest.selection import SelectionRule
from powersync_pipelines.config import load_sites
from powersync_pipelines.defs.resources import ClockResource, HistoryStoreResource, SitesResource
from powersync_pipelines.defs.strategy import strategy_selection
from powersync_pipelines.forecasts.blend import blend_price_horizon
from powersync_pipelines.forecasts.price_mapping import SpikeReserveRule
from powersync_pipelines.forecasts.price_model import PriceModelConfig, fit_price_model
from powersync_pipelines.forecasts.strategy_choice import current_strategy, record_choice
from powersync_pipelines.schemas import finalize_price_frame
from powersync_pipelines.storage import HistoryStore

from ._prices import RETAIL_MAPS, TZ, retail, rrp_series
from .test_refit_asset import _sites_file, _store_prices

NOW = "2024-05-12T01:00:00Z"  # 11:00 in Melbourne: local day 2024-05-12


def _materialize(tmp_path, db, **config):
    resources = {"sites": SitesResource(path=_sites_file(tmp_path, ["home"])),
                 "history": HistoryStoreResource(path=str(db)), "clock": ClockResource()}
    run_config = {"ops": {"strategy_selection": {"config": {"now": NOW, "trailing_days": 3, **config}}}}
    return dg.materialize([strategy_selection], resources=resources, run_config=run_config)


def test_the_asset_replays_every_candidate_and_stores_one_choice_per_local_day(tmp_path):
    db = tmp_path / "h.duckdb"
    store = HistoryStore(db)
    _store_prices(store, "home", rrp_series(days=14, start="2024-04-28T14:00:00Z", seed=4, spike_rate=0.2))
    res = _materialize(tmp_path, db)
    assert res.success
    rows = store.query("SELECT * FROM strategy_selection WHERE site_id = 'home'")
    assert len(rows) == 1
    row = rows.iloc[0]
    assert str(row["day"])[:10] == "2024-05-12"
    assert pd.Timestamp(row["decided_at"]) == pd.Timestamp("2024-05-12", tz=TZ)  # the local midnight
    savings = json.loads(row["savings"])
    assert set(savings) == {"learned", "learned_no_reserve", "persistence"}
    assert all(np.isfinite(v) for v in savings.values())
    assert row["days_seen"] == 3 and row["trailing_days"] == 3
    best = max(savings, key=savings.get)
    assert row["choice"] in (best, "learned")  # the best, or the default kept within the margin
    meta = res.asset_materializations_for_node("strategy_selection")[0].metadata
    assert meta["home/choice"].value == row["choice"] and meta["decided"].value == 1
    # once per local day: a second run keeps the stored choice, force decides again
    again = _materialize(tmp_path, db)
    assert again.asset_materializations_for_node("strategy_selection")[0].metadata["kept"].value == 1
    forced = _materialize(tmp_path, db, force=True)
    assert forced.asset_materializations_for_node("strategy_selection")[0].metadata["decided"].value == 1
    assert len(store.query("SELECT * FROM strategy_selection")) == 1


def test_the_next_day_replays_only_the_day_not_yet_replayed(tmp_path):
    store = HistoryStore(tmp_path / "h.duckdb")
    _store_prices(store, "home", rrp_series(days=14, start="2024-04-28T14:00:00Z", seed=4, spike_rate=0.2))
    site = load_sites(_sites_file(tmp_path, ["home"])).get("home")
    rule = SelectionRule(trailing_days=3)
    first = select_for_site(store, site, pd.Timestamp(NOW), rule)
    before = store.query("SELECT day, candidate, replayed_at, soc_end FROM strategy_shadow_days ORDER BY day, candidate")
    assert len(before) == 9 and first.days_seen == 3  # 3 days x 3 candidates, replayed once
    second = select_for_site(store, site, pd.Timestamp(NOW) + pd.Timedelta(days=1), rule)
    after = store.query("SELECT day, candidate, replayed_at, soc_end FROM strategy_shadow_days ORDER BY day, candidate")
    assert len(after) == 12 and second.days_seen == 3
    old = after[after["day"].astype(str) <= "2024-05-11"].reset_index(drop=True)
    pd.testing.assert_frame_equal(old, before)  # the earlier days were not replayed again
    assert set(after.loc[after["day"].astype(str) == "2024-05-12", "candidate"]) == set(first.savings)
    assert second.previous == first.choice


def test_without_a_wholesale_price_the_learned_candidate_fits_on_the_stored_import_prices(tmp_path):
    """An Octopus-like site (half-hourly retail prices, no RRP): each replayed day's model is fitted on the
    stored import prices of the ``fit_days`` before it, as the live refit fits, not on the replay's own days."""
    store = HistoryStore(tmp_path / "h.duckdb")
    s = rrp_series(days=70, start="2024-03-03T14:00:00Z", seed=5)
    s = s[s.index.minute % 30 == 0]
    imp, exp = retail(s.to_numpy())
    frame = pd.DataFrame({"import_price": imp, "export_price": exp, "is_forecast": False}, index=s.index)
    store.upsert_prices("home", finalize_price_frame(frame, "octopus", pd.Timestamp("2024-06-01T00:00:00Z")))
    site = load_sites(_sites_file(tmp_path, ["home"])).get("home")
    first = pd.Timestamp("2024-05-09", tz=TZ)
    opts = _learned_options(store, site, first)
    assert opts.history_kind == "import_price"
    assert opts.history_series.index.to_series().diff().dropna().eq(pd.Timedelta(minutes=5)).all()
    data = realised_data(store, site, first.tz_convert("UTC"), pd.Timestamp(NOW))
    fc = LearnedForecast(data, ForecastOptions(model_options=opts))
    model = fc.model_for(data.i0)
    assert fc.kind == "import_price" and model.series == "import_price"
    fit_days = pd.Timedelta(days=PriceModelConfig().fit_days)
    assert model.train_start == first.tz_convert("UTC") - fit_days  # the stored history, the live window
    alone = LearnedForecast(data, ForecastOptions(model_options=_learned_options(store, site, first.replace(year=2023))))
    assert alone.model_for(data.i0).train_start >= first.tz_convert("UTC") - pd.Timedelta(days=4)  # its own days
    sel = select_for_site(store, site, pd.Timestamp(NOW), SelectionRule(trailing_days=2))
    assert set(sel.savings) == {"learned", "learned_no_reserve", "persistence"} and sel.days_seen == 2
    assert all(np.isfinite(v) for v in sel.savings.values())


def test_a_site_without_stored_prices_keeps_the_default_and_says_why(tmp_path):
    db = tmp_path / "h.duckdb"
    HistoryStore(db).migrate()
    res = _materialize(tmp_path, db)
    assert res.success
    row = HistoryStore(db).query("SELECT choice, savings FROM strategy_selection").iloc[0]
    assert row["choice"] == "learned" and json.loads(row["savings"]) == {}


def test_the_live_blend_reads_the_choice_in_force(tmp_path):
    store = HistoryStore(tmp_path / "h.duckdb")
    store.migrate()
    assert current_strategy(store, "home", pd.Timestamp(NOW)) == "learned"  # nothing stored: the default
    record_choice(store, "home", pd.Timestamp("2024-05-12", tz=TZ), "2024-05-12", "persistence", "learned",
                  {"learned": 1.0, "persistence": 2.0}, 3, 3, 0.05)
    assert current_strategy(store, "home", pd.Timestamp(NOW)) == "persistence"
    assert current_strategy(store, "home", pd.Timestamp("2024-05-11T12:00:00Z")) == "learned"  # before it
    with pytest.raises(ValueError, match="strategy"):
        record_choice(store, "home", pd.Timestamp(NOW), "2024-05-12", "greedy", None, {}, 0, 3, 0.05)


def _history(s: pd.Series, now: pd.Timestamp) -> pd.DataFrame:
    imp, exp = RETAIL_MAPS[0](s.to_numpy()), RETAIL_MAPS[1](s.to_numpy())
    h = pd.DataFrame({"import_price": imp, "export_price": exp, "rrp": s.to_numpy()}, index=s.index)
    return h[h.index <= now]


def test_the_blend_plans_each_strategy_its_own_way():
    s = rrp_series(days=12, seed=3, spike_rate=0.3) + 40.0
    now = s.index[-1] - pd.Timedelta(hours=6)
    model = fit_price_model(s, now.normalize(), TZ)
    history = _history(s, now)
    rule = SpikeReserveRule(gate=(), quiet_threshold=None)  # fires wherever the P90 reaches 200 $/MWh
    kw = {"provider_kind": "aemo", "retail": RETAIL_MAPS, "reserve": rule}
    learned = blend_price_horizon(pd.DataFrame(), history, now, model, **kw)
    plain = blend_price_horizon(pd.DataFrame(), history, now, model, strategy="learned_no_reserve", **kw)
    off = blend_price_horizon(pd.DataFrame(), history, now, model, **{**kw, "reserve": SpikeReserveRule(weight=0.0)})
    assert (learned["import_price"] > plain["import_price"] + 1e-9).any()  # the rule lifts some slots
    np.testing.assert_allclose(plain["import_price"], off["import_price"])  # no reserve = weight 0
    yesterday = blend_price_horizon(pd.DataFrame(), history, now, model, strategy="persistence", **kw)
    idx = yesterday.index
    h = (idx - now) // pd.Timedelta(days=1) + 1
    want = history["import_price"].reindex(idx - pd.to_timedelta(h, unit="D")).to_numpy()
    np.testing.assert_allclose(yesterday["import_price"].to_numpy()[1:], want[1:])
    with pytest.raises(ValueError, match="strategy"):
        blend_price_horizon(pd.DataFrame(), history, now, model, strategy="sdp", **kw)


def test_the_sites_file_parses_with_the_asset_config(tmp_path):
    assert load_sites(_sites_file(tmp_path, ["home"])).get("home").timezone == TZ
