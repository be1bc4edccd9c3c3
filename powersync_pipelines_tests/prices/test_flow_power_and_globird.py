"""Flow Power (wholesale + network + margin, GST explicit, happy-hour export) and Globird (static TOU + AEMO
spike flags), both in the site's local time across daylight saving, and live via the loopback NEMWEB."""

from __future__ import annotations

import pandas as pd
import pytest
from pydantic import ValidationError

from powersync_pipelines.prices.errors import PriceDataError
from powersync_pipelines.prices.flow_power import fetch_flow_power, flow_power_frame
from powersync_pipelines.prices.globird import fetch_globird, globird_frame

from .conftest import make_site
from .test_aemo_nemweb import NOW, serve_nemweb

NETWORK = [  # SAPN-like residential TOU network tariff, $/kWh ex GST
    {"start": "00:00", "end": "10:00", "import_price": 0.15},
    {"start": "10:00", "end": "15:00", "import_price": 0.05},
    {"start": "15:00", "end": "24:00", "import_price": 0.25},
]
TOU = [
    {"start": "21:00", "end": "11:00", "import_price": 0.30, "export_price": 0.03},  # wraps midnight
    {"start": "11:00", "end": "14:00", "import_price": 0.0, "export_price": 0.0},    # free power
    {"start": "14:00", "end": "21:00", "import_price": 0.48, "export_price": 0.10},
]


def wholesale(start: str, hours: int, rrp: float = 100.0) -> pd.DataFrame:
    idx = pd.date_range(start, periods=hours * 12, freq="5min", tz="UTC", name="interval_start")
    return pd.DataFrame({"rrp": rrp, "is_forecast": False, "provenance": "dispatch"}, index=idx)


def test_flow_power_import_is_wholesale_plus_network_plus_margin_with_gst_once():
    site = make_site("flow_power", region="SA1", network_tariff=NETWORK, margin_per_kwh=0.02)
    df = flow_power_frame(wholesale("2025-01-15T00:00:00Z", 24), site.provider, site.timezone)
    # 2025-01-15 00:00 UTC = 10:30 Adelaide (ACDT): network 0.05 -> (0.100 + 0.05 + 0.02) * 1.1
    assert df["import_price"].iloc[0] == pytest.approx((0.1 + 0.05 + 0.02) * 1.1)
    # 05:00 UTC = 15:30 local: peak network 0.25
    assert df.loc["2025-01-15T05:00:00Z", "import_price"] == pytest.approx((0.1 + 0.25 + 0.02) * 1.1)


def test_flow_power_export_pays_only_in_the_local_happy_hour_across_dst():
    site = make_site("flow_power", region="NSW1", happy_hour_export_per_kwh=0.45)
    summer = flow_power_frame(wholesale("2025-01-15T00:00:00Z", 24), site.provider, site.timezone)
    paid = summer[summer["export_price"] > 0]
    # 17:30-19:30 Sydney daylight time (UTC+11) = 06:30-08:30 UTC, 24 five-minute intervals
    assert len(paid) == 24 and paid.index[0] == pd.Timestamp("2025-01-15T06:30:00Z")
    assert set(paid["export_price"]) == {0.45} and paid["happy_hour"].all()
    winter = flow_power_frame(wholesale("2025-07-15T00:00:00Z", 24), site.provider, site.timezone)
    assert winter[winter["export_price"] > 0].index[0] == pd.Timestamp("2025-07-15T07:30:00Z")  # UTC+10


def test_globird_prices_follow_the_static_tou_and_spikes_come_from_aemo():
    site = make_site("globird", region="VIC1", tou=TOU, spike_threshold_per_mwh=3000)
    raw = wholesale("2025-01-14T13:00:00Z", 24, rrp=80.0)  # 00:00 Melbourne (UTC+11)
    raw.loc["2025-01-15T07:00:00Z":"2025-01-15T07:25:00Z", "rrp"] = 16_600.0
    df = globird_frame(raw, site.provider, site.timezone)
    assert df.loc["2025-01-15T01:00:00Z", "import_price"] == 0.0      # 12:00 local: free window
    assert df.loc["2025-01-15T08:00:00Z", "import_price"] == 0.48     # 19:00 local: peak
    assert df.loc["2025-01-14T13:00:00Z", "import_price"] == 0.30     # midnight: the wrapping band
    spikes = df[df["spike_status"] == "spike"]
    assert len(spikes) == 6 and spikes.index[0] == pd.Timestamp("2025-01-15T07:00:00Z")
    assert (spikes["import_price"] == 0.48).all()  # the owner still pays the TOU price


def test_tou_bands_must_cover_the_whole_day_and_globird_needs_them():
    with pytest.raises(ValidationError, match="leave 14:00 uncovered"):
        make_site("globird", region="VIC1", tou=TOU[:2])
    with pytest.raises(ValidationError, match="needs 'tou' bands"):
        make_site("globird", region="VIC1")
    with pytest.raises(ValidationError, match="network_tariff"):
        make_site("flow_power", region="SA1", network_tariff=NETWORK[1:])


def test_flow_power_rejects_rrp_in_the_wrong_unit():
    site = make_site("flow_power", region="SA1")
    raw = wholesale("2025-01-15T00:00:00Z", 2, rrp=0.08)  # $/kWh handed over as if $/MWh
    with pytest.raises(PriceDataError, match="flow_power: wrong units"):
        flow_power_frame(raw, site.provider, site.timezone)


def test_both_fetch_live_from_nemweb(server):
    serve_nemweb(server)
    fp = fetch_flow_power(make_site("flow_power", region="SA1", base_url=server.url), NOW, horizon_hours=24)
    gb = fetch_globird(make_site("globird", region="SA1", tou=TOU, base_url=server.url), NOW, horizon_hours=24)
    assert fp.index.equals(gb.index) and fp["rrp"].equals(gb["rrp"])
    assert fp["spike_status"].iloc[0] == gb["spike_status"].iloc[0] == "spike"  # SA1 dispatch at $15,000
    assert fp["import_price"].iloc[0] > 15  # Flow Power passes the spike through; Globird does not
    assert gb["import_price"].iloc[0] in (0.30, 0.0, 0.48)
