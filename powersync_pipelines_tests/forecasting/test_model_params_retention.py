"""``price_models`` retention: parameters older than ``keep_days`` behind a site's newest model are emptied, the
rows (version, config, training window) stay, pruned models are never served, and an old store migrates."""

from __future__ import annotations

import json
from dataclasses import replace

import dagster as dg
import duckdb
import pandas as pd
import pytest

from powersync_pipelines.defs.forecasting import price_model
from powersync_pipelines.defs.resources import HistoryStoreResource, SitesResource
from powersync_pipelines.forecasts.price_model import fit_price_model
from powersync_pipelines.forecasts.price_registry import load_latest_model, prune_model_params, save_model
from powersync_pipelines.storage import HistoryStore

from ._prices import TZ, rrp_series
from .test_refit_asset import _sites_file, _store_prices

FIRST = pd.Timestamp("2024-05-20T00:00:00Z")


@pytest.fixture(scope="module")
def fitted():
    s = rrp_series(days=8, start="2024-05-10T00:00:00Z")
    return fit_price_model(s, pd.Timestamp("2024-05-18T00:00:00Z"), TZ)


def _save_daily(store: HistoryStore, site_id: str, model, days: int) -> list[pd.Timestamp]:
    """``days`` daily versions of one fitted model (as a daily refit would store them)."""
    out = []
    for d in range(days):
        as_of = FIRST + pd.Timedelta(days=d)
        save_model(store, site_id, replace(model, as_of=as_of, train_end=as_of - pd.Timedelta(minutes=5)))
        out.append(as_of)
    return out


def test_parameters_beyond_the_retention_are_emptied_and_the_rows_kept(tmp_path, fitted):
    store = HistoryStore(tmp_path / "h.duckdb")
    days = _save_daily(store, "home", fitted, 40)
    _save_daily(store, "other", fitted, 3)
    full = store.query("SELECT sum(length(params)) AS b FROM price_models WHERE site_id = 'home'").b[0]
    assert prune_model_params(store, "home", keep_days=30) == 9  # as_of before day 39 - 30 = day 9
    rows = store.query("SELECT as_of, params, params_pruned_at, config, train_start FROM price_models "
                       "WHERE site_id = 'home' ORDER BY as_of")
    assert len(rows) == 40
    pruned = rows[rows.params_pruned_at.notna()]
    assert [pd.Timestamp(t) for t in pruned.as_of] == days[:9]
    assert (pruned.params == "{}").all() and pruned.config.map(json.loads).map(lambda c: c["fit_days"]).eq(56).all()
    assert pruned.train_start.notna().all()
    kept = rows[rows.params_pruned_at.isna()]
    assert json.loads(kept.params.iloc[0])["kind"] == "profile_ar_quantile"
    left = store.query("SELECT sum(length(params)) AS b FROM price_models WHERE site_id = 'home'").b[0]
    assert left < full * 32 / 40
    # the other site is untouched, a second prune has nothing left to do
    assert store.query("SELECT count(*) AS n FROM price_models WHERE params_pruned_at IS NOT NULL "
                       "AND site_id = 'other'").n[0] == 0
    assert prune_model_params(store, "home", keep_days=30) == 0


def test_pruned_models_are_never_served_and_a_refit_restores_them(tmp_path, fitted):
    store = HistoryStore(tmp_path / "h.duckdb")
    days = _save_daily(store, "home", fitted, 5)
    assert prune_model_params(store, "home", keep_days=2) == 2
    assert load_latest_model(store, "home", days[1]) is None  # only pruned models were fitted by then
    latest = load_latest_model(store, "home", days[4])
    assert latest is not None and latest.model.as_of == days[4]
    save_model(store, "home", replace(fitted, as_of=days[0], train_end=days[0] - pd.Timedelta(minutes=5)))
    back = load_latest_model(store, "home", days[0])
    assert back is not None and back.model.as_of == days[0]
    with pytest.raises(ValueError, match="keep_days"):
        prune_model_params(store, "home", keep_days=-1)
    assert prune_model_params(HistoryStore(tmp_path / "empty.duckdb"), "home") == 0


def test_a_store_from_before_the_retention_migrates_with_its_models(tmp_path, fitted):
    db = tmp_path / "old.duckdb"
    store = HistoryStore(db)
    _save_daily(store, "home", fitted, 2)
    con = duckdb.connect(str(db))  # undo the retention migration: the file as an older release left it
    con.execute("ALTER TABLE price_models DROP COLUMN params_pruned_at")
    con.execute("DELETE FROM schema_migrations WHERE name = 'forecasting_0002_model_params_retention'")
    con.close()
    reopened = HistoryStore(db)
    assert reopened.migrate() == ["forecasting_0002_model_params_retention"]
    assert load_latest_model(reopened, "home").model.as_of == FIRST + pd.Timedelta(days=1)
    assert prune_model_params(reopened, "home", keep_days=0) == 1


def test_the_refit_asset_prunes_after_fitting(tmp_path, fitted):
    db = tmp_path / "h.duckdb"
    store = HistoryStore(db)
    _store_prices(store, "home", rrp_series(days=12, start="2024-05-01T00:00:00Z"))
    old = FIRST - pd.Timedelta(days=60)  # a model fitted two months before this refit
    save_model(store, "home", replace(fitted, as_of=old, train_end=old - pd.Timedelta(minutes=5)))
    resources = {"sites": SitesResource(path=_sites_file(tmp_path, ["home"])), "history": HistoryStoreResource(path=str(db))}
    res = dg.materialize([price_model], partition_key="2024-05-10", resources=resources)
    assert res.success
    meta = res.asset_materializations_for_node("price_model")[0].metadata
    assert meta["home/params_pruned"].value == 1
    rows = store.query("SELECT as_of, params_pruned_at FROM price_models ORDER BY as_of")
    assert rows.params_pruned_at.notna().tolist() == [True, False]
