"""``powersync backtest --demand-charge``: the demand charge each strategy's realised imports are billed."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from powersync_pipelines.cli import main
from powersync_pipelines.paths import DEFAULT_SITES_FILE, REPO_ROOT, shared_real_data


@pytest.fixture(scope="module")
def aemo_jan_2024():
    real = shared_real_data()
    f = real / "aemo/price_and_demand/VIC1/PRICE_AND_DEMAND_202401_VIC1.csv" if real else None
    if f is None or not f.exists():
        pytest.skip("../shared/data/real AEMO VIC1 2024-01 not present")
    return f


def _sites(tmp_path, demand: dict | None):
    doc = yaml.safe_load(DEFAULT_SITES_FILE.read_text())
    site = doc["sites"][0]
    for k in ("load",):
        site[k]["profile"] = str(REPO_ROOT / site[k]["profile"])
    site["provider"]["file"] = str(REPO_ROOT / site["provider"]["file"])
    if demand is not None:
        site.setdefault("features", {})["demand_charge"] = demand
    path = tmp_path / "sites.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_backtest_reports_each_strategys_demand_charge(tmp_path, aemo_jan_2024, capsys, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    sites = _sites(tmp_path, {"start": "16:00", "end": "20:00", "price_per_kw_month": 12.0})
    out = tmp_path / "bt"
    code = main(["backtest", "--sites", str(sites), "--site-id", "demo", "--prices", str(aemo_jan_2024),
                 "--price-format", "aemo", "--strategies", "lp,self_consumption", "--start", "2024-01-09T14:00:00Z",
                 "--end", "2024-01-11T14:00:00Z", "--out", str(out), "--demand-charge"])
    assert code == 0, capsys.readouterr().err
    assert "demand charge: none $" in capsys.readouterr().out
    dc = json.loads((out / "summary.json").read_text())["demand_charge"]
    assert dc["tariff"]["price_per_kw_month"] == 12.0 and dc["tariff"]["interval_minutes"] == 30
    assert set(dc["strategies"]) == {"none", "self_consumption", "lp", "perfect_foresight"}
    none = dc["strategies"]["none"]
    iv = pd.read_parquet(out / "intervals.parquet")
    base = iv[iv.strategy == "none"].set_index("interval_start")["grid_import_kw"].resample("30min").mean()
    local = base.index.tz_convert("Australia/Melbourne")
    in_window = base[(local.hour >= 16) & (local.hour < 20) & (local.weekday < 5)]
    assert none["months"][0]["peak_kw"] == pytest.approx(in_window.max(), abs=1e-3)
    assert none["demand_charge"] == pytest.approx(12.0 * in_window.max(), abs=1e-2)
    assert dc["strategies"]["self_consumption"]["avoided_vs_no_battery"] >= 0  # the battery covers the evening


def test_demand_charge_flag_needs_the_sites_tariff(tmp_path, aemo_jan_2024, capsys, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    code = main(["backtest", "--sites", str(_sites(tmp_path, None)), "--site-id", "demo", "--prices", str(aemo_jan_2024),
                 "--out", str(tmp_path / "x"), "--demand-charge"])
    err = capsys.readouterr().err
    assert code == 2 and "has no features.demand_charge" in err and len(err.strip().splitlines()) == 1
