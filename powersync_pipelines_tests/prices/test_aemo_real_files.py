"""Real AEMO files: monthly price-and-demand CSVs and scraped DISPATCHPRICE rows (with their mislabelled
+11:00 offset), spot-checked against values read off the files by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from powersync_pipelines.config import RetailMapping
from powersync_pipelines.prices.aemo import read_aemo_file, read_wholesale_file
from powersync_pipelines.prices.globird import read_globird_file

from .conftest import make_site


@pytest.fixture(scope="module")
def dispatch_file():
    from powersync_pipelines.paths import shared_real_data

    root = shared_real_data()
    if root is None:
        pytest.skip("../shared/data/real is not present on this machine")
    return root / "aemo/dispatchprice/combined_dispatch_prices.csv"


def test_price_and_demand_month_is_nem_end_converted_to_utc_start(real_data):
    f = real_data / "aemo/price_and_demand/VIC1/PRICE_AND_DEMAND_202401_VIC1.csv"
    df = read_aemo_file(f, "VIC1", RetailMapping())
    assert len(df) == 31 * 288
    # first row: VIC1,2024/01/01 00:05:00,...,51.80 -> interval 00:00-00:05 NEM = 2023-12-31 14:00 UTC
    assert df.index[0] == pd.Timestamp("2023-12-31T14:00:00Z") and df["rrp"].iloc[0] == 51.80
    assert (df.index.to_series().diff().dropna() == pd.Timedelta(minutes=5)).all()
    # retail mapping applied once: (51.80/1000 + 0.12) * 1.1
    assert df["import_price"].iloc[0] == pytest.approx((0.0518 + 0.12) * 1.1)


def test_dispatchprice_wall_clock_is_nem_time_whatever_its_label_says(dispatch_file):
    raw = read_wholesale_file(dispatch_file, "NSW1")
    # PROVENANCE: "2025-12-27 00:05:00+11:00" NSW1 RRP 33.51 (raw DISPATCHIS 33.51273). Wall clock = NEM time.
    assert raw.loc[pd.Timestamp("2025-12-26T14:00:00Z"), "rrp"] == 33.51
    assert any("+11:00" in w for w in raw.attrs["warnings"])
    # trusting the label would have put that price an hour earlier (13:00 UTC); 13:00 holds a different one
    assert raw.loc[pd.Timestamp("2025-12-26T13:00:00Z"), "rrp"] != 33.51
    assert len(raw) == 4330 and raw.index.is_unique
    assert (raw.index.to_series().diff().dropna() == pd.Timedelta(minutes=5)).all()
    assert set(raw["price_status"]) == {"FIRM", "NOT FIRM"}


@pytest.mark.parametrize("region, lo, hi", [("NSW1", -999.99, 299.99), ("SA1", -325.0, 20299.99),
                                            ("VIC1", -253.6, 248.62)])
def test_dispatchprice_extremes_per_region(dispatch_file, region, lo, hi):
    raw = read_wholesale_file(dispatch_file, region)
    assert raw["rrp"].min() == lo and raw["rrp"].max() == hi


def test_globird_flags_the_sa1_cap_price_as_a_vpp_spike(dispatch_file):
    site = make_site("globird", region="SA1", tou=[
        {"start": "00:00", "end": "15:00", "import_price": 0.30, "export_price": 0.05},
        {"start": "15:00", "end": "21:00", "import_price": 0.45, "export_price": 0.05},
        {"start": "21:00", "end": "24:00", "import_price": 0.30, "export_price": 0.05}])
    df = read_globird_file(str(dispatch_file), site.provider, site.timezone)
    spikes = df[df["spike_status"] == "spike"]
    assert (spikes["rrp"] >= 3000).all() and 20299.99 in set(spikes["rrp"])
    assert (df.loc[df["rrp"] < 3000, "spike_status"] == "none").all()
    assert set(df["import_price"]) == {0.30, 0.45}  # the owner pays the static TOU, never the spike
