"""``powersync backtest`` on a few real days writes the contract files; bad input exits 2 with one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from powersync_pipelines.paths import REPO_ROOT, shared_real_data

CONTRACT = {"intervals", "replans", "elapsed_s", "replans_per_s", "baseline_cost", "self_consumption_cost", "cost",
            "perfect_foresight_cost", "savings", "capture_ratio"}


def powersync(*args: str) -> subprocess.CompletedProcess:
    """The real command line, in its own process (as the contract checker runs it)."""
    return subprocess.run([sys.executable, "-m", "powersync_pipelines.cli", "backtest", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)


def powersync_inline(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    """The same entry point in this process (no interpreter start-up per call)."""
    from powersync_pipelines.cli import main

    monkeypatch.chdir(REPO_ROOT)
    code = main(["backtest", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def aemo_jan_2024() -> Path:
    real = shared_real_data()
    f = real / "aemo/price_and_demand/VIC1/PRICE_AND_DEMAND_202401_VIC1.csv" if real else None
    if f is None or not f.exists():
        pytest.skip("../shared/data/real AEMO VIC1 2024-01 not present")
    return f


def test_cli_writes_summary_parquet_plot_and_report(tmp_path, aemo_jan_2024):
    out = tmp_path / "bt"
    r = powersync("--sites", "data/sites.yaml", "--site-id", "demo", "--prices", str(aemo_jan_2024),
                  "--price-format", "aemo", "--forecast", "perfect", "--strategies", "lp,self_consumption",
                  "--start", "2024-01-09T14:00:00Z", "--end", "2024-01-11T14:00:00Z", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # not a terminal: no progress bar
    s = json.loads((out / "summary.json").read_text())
    assert s.keys() >= CONTRACT
    assert s["intervals"] == 576 and s["replans"] == 576
    assert s["savings"] == pytest.approx(s["baseline_cost"] - s["cost"], abs=1e-3)
    assert 0.95 <= s["capture_ratio"] <= 1.02
    iv = pd.read_parquet(out / "intervals.parquet")
    assert set(iv.strategy) == {"none", "self_consumption", "lp", "perfect_foresight"} and len(iv) == 4 * 576
    assert (out / "backtest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert "capture ratio" in report and "| lp |" in report
    assert "savings" in r.stdout


def test_cli_bad_input_exits_2_with_one_line(tmp_path, aemo_jan_2024, capsys, monkeypatch):
    common = ("--sites", "data/sites.yaml", "--prices", str(aemo_jan_2024), "--out", str(tmp_path / "x"))
    code, _, err = powersync_inline(capsys, monkeypatch, *common, "--site-id", "demo",
                                    "--start", "2023-06-01T00:00:00Z", "--end", "2023-06-02T00:00:00Z")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "outside the price data" in err
    code, _, err = powersync_inline(capsys, monkeypatch, *common, "--site-id", "nosuch")
    assert code == 2 and "no site with id 'nosuch'" in err
    code, _, err = powersync_inline(capsys, monkeypatch, *common, "--site-id", "demo", "--strategies", "lp,yolo")
    assert code == 2 and "unknown strategies ['yolo']" in err
    code, _, err = powersync_inline(capsys, monkeypatch, *common, "--site-id", "demo", "--start", "yesterday-ish")
    assert code == 2 and "--start 'yesterday-ish' is not an ISO 8601 time" in err
    assert not (tmp_path / "x").exists()


def test_cli_normalized_prices_with_load_and_solar_files_into_duckdb(tmp_path, capsys, monkeypatch):
    idx = pd.date_range("2024-03-10T00:00:00Z", periods=3 * 288, freq="5min", tz="UTC")
    h = (idx.tz_convert("Australia/Melbourne").hour + idx.tz_convert("Australia/Melbourne").minute / 60).to_numpy()
    imp = 0.2 + 0.3 * (abs(h - 18.5) < 1.5) - 0.1 * (abs(h - 12.5) < 2)
    stamp = idx.strftime("%Y-%m-%dT%H:%M:%SZ")
    pd.DataFrame({"interval_start": stamp, "import_price": imp, "export_price": imp - 0.12}).to_csv(tmp_path / "p.csv", index=False)
    pd.DataFrame({"interval_start": stamp, "load_kw": 0.8}).to_csv(tmp_path / "load.csv", index=False)
    pd.DataFrame({"interval_start": stamp[::6], "solar_kw": 1.0 * (abs(h[::6] - 12.5) < 4)}).to_csv(
        tmp_path / "solar.csv", index=False)  # half-hourly solar is held for its six 5-minute slots
    db = tmp_path / "h.duckdb"
    code, _, err = powersync_inline(
        capsys, monkeypatch, "--sites", "data/sites.yaml", "--site-id", "demo", "--prices", str(tmp_path / "p.csv"),
        "--load", str(tmp_path / "load.csv"), "--solar", str(tmp_path / "solar.csv"), "--strategies", "lp",
        "--forecast", "persistence", "--start", "2024-03-11T00:00:00Z", "--end", "2024-03-12T00:00:00Z",
        "--db", str(db), "--out", str(tmp_path / "out"))
    assert code == 0, err
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["forecast_model"] == "persistence" and s["intervals"] == 288 and s["savings"] > 0
    from powersync_pipelines.storage import HistoryStore

    monthly = HistoryStore(db).query("SELECT strategy, savings FROM backtest_monthly ORDER BY strategy")
    assert list(monthly.strategy) == ["lp", "none", "perfect_foresight", "self_consumption"]
    assert monthly.set_index("strategy").loc["lp", "savings"] == pytest.approx(s["savings"], abs=1e-4)
