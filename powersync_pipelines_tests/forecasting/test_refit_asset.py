"""The ``price_model`` refit asset, materialised against a temp DuckDB: one versioned model per site and day,
fitted only on stored realised prices before the partition's end, with freshness and drift checks."""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import pandas as pd

from powersync_pipelines.defs.forecasting import price_model, refit_days
from powersync_pipelines.defs.resources import HistoryStoreResource, SitesResource
from powersync_pipelines.forecasts.price_registry import drift_reports, load_latest_model, record_forecast
from powersync_pipelines.schemas import finalize_price_frame
from powersync_pipelines.storage import HistoryStore

from ._prices import retail, rrp_series

SITES = """
sites:
  - id: {site}
    timezone: Australia/Melbourne
    provider: {{kind: aemo, region: VIC1}}
    battery: {{kind: simulated, capacity_kwh: 13.5, max_charge_kw: 5.0, max_discharge_kw: 5.0}}
    load: {{profile: {profile}}}
"""


def _sites_file(tmp_path, ids: list[str]) -> str:
    from powersync_pipelines.paths import DEFAULT_SITES_FILE

    profile = (DEFAULT_SITES_FILE.parent / "profiles" / "ausgrid_customer12.csv").resolve()
    text = "sites:" + "".join(SITES.format(site=i, profile=profile).split("sites:", 1)[1] for i in ids)
    p = tmp_path / "sites.yaml"
    p.write_text(text)
    return str(p)


def _store_prices(store: HistoryStore, site_id: str, s: pd.Series) -> None:
    imp, exp = retail(s.to_numpy())
    frame = pd.DataFrame({"import_price": imp, "export_price": exp, "is_forecast": False}, index=s.index)
    frame = finalize_price_frame(frame, "aemo", pd.Timestamp("2024-06-01T00:00:00Z"))
    frame["rrp"] = s.to_numpy()
    store.upsert_prices(site_id, frame)


def test_refit_records_a_versioned_model_with_its_training_window(tmp_path):
    db = tmp_path / "h.duckdb"
    store = HistoryStore(db)
    s = rrp_series(days=20, start="2024-05-01T00:00:00Z")
    _store_prices(store, "home", s)
    resources = {"sites": SitesResource(path=_sites_file(tmp_path, ["home", "newcomer"])),
                 "history": HistoryStoreResource(path=str(db))}
    res = dg.materialize([price_model], partition_key="2024-05-15", resources=resources, raise_on_error=False)
    assert res.success
    rows = store.query("SELECT * FROM price_models ORDER BY site_id")
    assert list(rows.site_id) == ["home"]  # the newcomer has no history: skipped, not failed
    r = rows.iloc[0]
    as_of = pd.Timestamp("2024-05-16T00:00:00Z")
    assert pd.Timestamp(r.as_of) == as_of and pd.Timestamp(r.train_end) < as_of
    assert pd.Timestamp(r.train_start) == s.index[0] and r.n_train == (as_of - s.index[0]) // pd.Timedelta("5min")
    assert r.series == "rrp" and r.region == "VIC1" and r.partition_key == "2024-05-15"
    assert json.loads(r.config)["fit_days"] == 56 and r.model_id.startswith("home:profile_ar_quantile-v")
    checks = {c.check_name: c for c in res.get_asset_check_evaluations()}
    assert not checks["price_model_fresh"].passed  # the newcomer has no model: flagged
    assert "newcomer" in checks["price_model_fresh"].metadata["stale"].value
    assert checks["price_forecast_drift"].passed
    # The live side finds it, and only from its cut-off on.
    assert load_latest_model(store, "home", as_of - pd.Timedelta(minutes=5)) is None
    latest = load_latest_model(store, "home", as_of)
    assert latest is not None and latest.model.train_end == pd.Timestamp(r.train_end)


def test_refit_is_one_run_per_backfill_and_idempotent(tmp_path):
    assert price_model.backfill_policy == dg.BackfillPolicy.single_run()
    assert refit_days.get_partition_keys()[0] == "2023-01-01"
    db = tmp_path / "h.duckdb"
    store = HistoryStore(db)
    _store_prices(store, "home", rrp_series(days=12, start="2024-05-01T00:00:00Z"))
    resources = {"sites": SitesResource(path=_sites_file(tmp_path, ["home"])), "history": HistoryStoreResource(path=str(db))}
    for _ in range(2):
        assert dg.materialize([price_model], partition_key="2024-05-10", resources=resources).success
    assert store.query("SELECT count(*) AS n FROM price_models").n[0] == 1


def test_drift_is_flagged_when_realised_prices_leave_the_band(tmp_path):
    store = HistoryStore(tmp_path / "h.duckdb")
    s = rrp_series(days=4, start="2024-05-01T00:00:00Z", spikes=False)
    realised = pd.Series(retail(s.to_numpy())[0], index=s.index)
    for site, offset in {"good": 0.0, "bad": 5.0}.items():  # "bad": a model gone badly wrong
        _store_prices(store, site, s)
        for now in pd.date_range("2024-05-01T00:00:00Z", periods=60, freq="5min"):
            idx = pd.date_range(now, periods=576, freq="5min", tz="UTC")
            p50 = realised.reindex(idx).ffill().to_numpy() + offset
            h = pd.DataFrame({"import_price": p50, "export_price": p50 - 0.12, "p10": p50 - 0.1, "p50": p50,
                              "p90": p50 + 0.1, "provenance": "learned", "provider_weight": 0.0}, index=idx)
            record_forecast(store, site, now, h, "m1")
    at = pd.Timestamp("2024-05-03T00:00:00Z")
    bad = {r.lead_h: r for r in drift_reports(store, "bad", at)}
    good = {r.lead_h: r for r in drift_reports(store, "good", at)}
    assert set(bad) == {1, 6, 24} and all(r.n == 60 for r in bad.values())
    assert all(r.drifting for r in bad.values()) and np.isclose(bad[1].coverage_p10_p90, 0.0)
    assert not any(r.drifting for r in good.values()) and good[1].coverage_p10_p90 == 1.0
