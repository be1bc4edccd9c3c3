"""Inputs a backtest cannot trust are refused with the file and the problem named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.backtest import BacktestInputError
from powersync_pipelines.backtest.runner import load_data
from powersync_pipelines.config import parse_sites

from ._synthetic import SITES_YAML, daily_prices


@pytest.fixture()
def site():
    return parse_sites(__import__("yaml").safe_load(SITES_YAML)).get("home")


def _prices_csv(path: Path, index: pd.DatetimeIndex, scale: float = 1.0) -> Path:
    imp, exp = daily_prices(index)
    pd.DataFrame({"interval_start": index.strftime("%Y-%m-%dT%H:%M:%SZ"), "import_price": imp * scale,
                  "export_price": exp * scale}).to_csv(path, index=False)
    return path


def _grid(days: int = 3, start: str = "2024-03-10T00:00:00Z") -> pd.DatetimeIndex:
    return pd.date_range(start, periods=days * 288, freq="5min", tz="UTC")


def test_a_long_price_gap_is_refused(tmp_path, site):
    idx = _grid()
    idx = idx.delete(slice(300, 312))  # one hour missing
    f = _prices_csv(tmp_path / "gappy.csv", idx)
    with pytest.raises(BacktestInputError, match=r"gappy\.csv: gap of 0 days 01:00:00 starting 2024-03-11T01:00:00"):
        load_data(site, [f])


def test_a_short_price_gap_is_filled_and_noted(tmp_path, site):
    idx = _grid().delete(slice(300, 303))  # 15 minutes
    data = load_data(site, [_prices_csv(tmp_path / "short_gap.csv", idx)])
    assert len(data.index) == 3 * 288 and not np.isnan(data.import_price).any()
    assert any("3 missing 5-minute price intervals forward-filled" in n for n in data.notes)


def test_timestamps_off_the_five_minute_grid_are_refused(tmp_path, site):
    idx = _grid() + pd.Timedelta(minutes=2, seconds=30)
    with pytest.raises(BacktestInputError, match="not on the 5-minute grid"):
        load_data(site, [_prices_csv(tmp_path / "shifted.csv", idx)])


def test_prices_in_cents_are_refused(tmp_path, site):
    # c/kWh passed as $/kWh: within the +-25 schema band for most rows, caught by the median check
    f = _prices_csv(tmp_path / "cents.csv", _grid(), scale=20.0)
    with pytest.raises(BacktestInputError, match=r"cents\.csv.*c/kWh or \$/MWh\? expected \$/kWh"):
        load_data(site, [f])


def test_load_in_watts_is_refused(tmp_path, site):
    idx = _grid()
    f = _prices_csv(tmp_path / "p.csv", idx)
    pd.DataFrame({"interval_start": idx.strftime("%Y-%m-%dT%H:%M:%SZ"), "load_kw": np.full(len(idx), 850.0)}).to_csv(
        tmp_path / "load_w.csv", index=False)
    from powersync_pipelines.backtest import SiteSeriesSources

    with pytest.raises(BacktestInputError, match=r"load_w\.csv load_kw: values up to 850 .* are these W\? expected kW"):
        load_data(site, [f], sources=SiteSeriesSources(load_file=str(tmp_path / "load_w.csv")))


def test_load_in_kwh_column_is_refused_with_a_hint(tmp_path, site):
    idx = _grid()
    f = _prices_csv(tmp_path / "p.csv", idx)
    pd.DataFrame({"interval_start": idx.strftime("%Y-%m-%dT%H:%M:%SZ"), "load_kwh": 0.05}).to_csv(tmp_path / "l.csv", index=False)
    from powersync_pipelines.backtest import SiteSeriesSources

    with pytest.raises(BacktestInputError, match=r"l\.csv: missing column load_kw \(found \['load_kwh'\]: convert to mean power"):
        load_data(site, [f], sources=SiteSeriesSources(load_file=str(tmp_path / "l.csv")))


def test_a_load_series_that_does_not_cover_the_window_is_refused(tmp_path, site):
    idx = _grid()
    f = _prices_csv(tmp_path / "p.csv", idx)
    short = idx[: 288]
    pd.DataFrame({"interval_start": short.strftime("%Y-%m-%dT%H:%M:%SZ"), "load_kw": 0.7}).to_csv(tmp_path / "l.csv", index=False)
    from powersync_pipelines.backtest import SiteSeriesSources

    with pytest.raises(BacktestInputError, match="load series does not cover the window"):
        load_data(site, [f], start="2024-03-11T00:00:00Z", end="2024-03-12T00:00:00Z",
                  sources=SiteSeriesSources(load_file=str(tmp_path / "l.csv")))


def test_misaligned_load_series_is_refused(tmp_path, site):
    idx = _grid()
    f = _prices_csv(tmp_path / "p.csv", idx)
    off = idx + pd.Timedelta(minutes=1)
    pd.DataFrame({"interval_start": off.strftime("%Y-%m-%dT%H:%M:%SZ"), "load_kw": 0.7}).to_csv(tmp_path / "l.csv", index=False)
    from powersync_pipelines.backtest import SiteSeriesSources

    with pytest.raises(BacktestInputError, match=r"l\.csv: .* not on the 5-minute grid \(first 2024-03-10T00:01:00"):
        load_data(site, [f], sources=SiteSeriesSources(load_file=str(tmp_path / "l.csv")))


def test_window_outside_the_data_and_naive_times_are_refused(tmp_path, site):
    f = _prices_csv(tmp_path / "p.csv", _grid())
    with pytest.raises(BacktestInputError, match="is outside the price data"):
        load_data(site, [f], start="2024-03-09T00:00:00Z", end="2024-03-11T00:00:00Z")
    with pytest.raises(BacktestInputError, match="must carry a UTC offset"):
        load_data(site, [f], start="2024-03-10T00:00:00", end="2024-03-11T00:00:00Z")
    with pytest.raises(BacktestInputError, match="not after"):
        load_data(site, [f], start="2024-03-11T00:00:00Z", end="2024-03-11T00:00:00Z")


def test_missing_and_unmatched_price_paths_are_refused(tmp_path, site):
    with pytest.raises(BacktestInputError, match="no files match"):
        load_data(site, [str(tmp_path / "*.csv")])
    with pytest.raises(BacktestInputError, match="price file not found"):
        load_data(site, [tmp_path / "absent.csv"])
    bad = tmp_path / "odd.csv"
    bad.write_text("when,price\n2024-01-01,1\n")
    with pytest.raises(BacktestInputError, match="odd.csv"):
        load_data(site, [bad], price_format="normalized")
