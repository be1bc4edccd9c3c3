"""Every price format the product reads feeds the backtest: half-hourly Octopus rates (import and
export files), Amber day files, AEMO months; format detected from the file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.backtest import BacktestInputError
from powersync_pipelines.backtest.inputs import detect_format
from powersync_pipelines.backtest.runner import load_data
from powersync_pipelines.config import parse_sites
from powersync_pipelines.paths import shared_real_data

from ._synthetic import SITES_YAML


@pytest.fixture()
def site():
    return parse_sites(__import__("yaml").safe_load(SITES_YAML)).get("home")


def _agile(path, start: str, days: int, base: float) -> pd.DatetimeIndex:
    idx = pd.date_range(start, periods=days * 48, freq="30min", tz="UTC")
    p = base + 10 * np.sin(np.arange(len(idx)) / 48 * 2 * np.pi)
    pd.DataFrame({"timestamp": idx.strftime("%Y-%m-%dT%H:%M:%SZ"), "price": np.round(p, 3)}).to_csv(path, index=False)
    return idx


def test_half_hourly_octopus_rates_are_held_for_six_slots_with_export_file(tmp_path, site):
    idx = _agile(tmp_path / "agile_import.csv", "2024-01-10T00:00:00Z", 3, 25.0)  # p/kWh
    _agile(tmp_path / "agile_outgoing.csv", "2024-01-10T00:00:00Z", 3, 12.0)
    assert detect_format(tmp_path / "agile_import.csv") == "octopus"
    data = load_data(site, [tmp_path / "agile_import.csv"], "octopus", "2024-01-11T00:00:00Z", "2024-01-12T00:00:00Z",
                     export_prices=[tmp_path / "agile_outgoing.csv"])
    assert len(data.index) == 3 * 288
    first_half_hour = data.import_price[:6]
    assert np.all(first_half_hour == first_half_hour[0]) and first_half_hour[0] == pytest.approx(0.25)  # £/kWh
    assert data.export_price[0] == pytest.approx(0.12)
    assert data.index[data.i0] == pd.Timestamp("2024-01-11T00:00:00Z") and data.i1 - data.i0 == 288
    assert idx[-1] + pd.Timedelta(minutes=25) == data.index[-1]


def test_export_files_only_for_octopus(tmp_path, site):
    idx = pd.date_range("2024-03-10T00:00:00Z", periods=288, freq="5min", tz="UTC")
    pd.DataFrame({"interval_start": idx.strftime("%Y-%m-%dT%H:%M:%SZ"), "import_price": 0.3, "export_price": 0.1}).to_csv(
        tmp_path / "p.csv", index=False)
    with pytest.raises(BacktestInputError, match="only read for --price-format octopus"):
        load_data(site, [tmp_path / "p.csv"], export_prices=[tmp_path / "p.csv"])


def test_amber_day_files_as_a_folder_glob():
    real = shared_real_data()
    folder = real / "amber/enkit-matlab/sa_prices_5min" if real else None
    if folder is None or not folder.exists():
        pytest.skip("../shared/data/real Amber captures not present")
    s = parse_sites(__import__("yaml").safe_load(SITES_YAML.replace("Australia/Melbourne", "Australia/Adelaide"))).get("home")
    data = load_data(s, [str(folder / "2025011[0-3].json")], None, "2025-01-11T00:00:00Z", "2025-01-12T00:00:00Z")
    assert data.i1 - data.i0 == 288 and np.isnan(data.rrp).all()
    assert data.import_price.max() < 25 and data.export_price.min() > -2  # $/kWh, not c/kWh
