"""The Sigenergy cloud price table: 48 local half hours in cents, the same rolling rates as Tesla's."""

from __future__ import annotations

import pandas as pd

from powersync_pipelines.tariffs.sigenergy import build_sigenergy_tariff
from powersync_pipelines.tariffs.sync import rate_table
from powersync_pipelines.tariffs.tesla import build_tesla_tariff

from .factories import decode_start, encoded_prices, make_site


def test_sigenergy_body_shape_and_slots() -> None:
    site = make_site("Australia/Adelaide", battery_kind="sigenergy",
                     provider={"kind": "amber", "site_id": "S", "token_env": "T"})
    start = pd.Timestamp("2024-06-03T00:00:00Z")
    now = pd.Timestamp("2024-06-03T00:10:00Z")  # 09:40 ACST
    body = build_sigenergy_tariff(encoded_prices(start, 30), site, now, station_id=123456)
    assert body["stationId"] == 123456 and body["priceMode"] == 1
    for side in ("buyPrice", "sellPrice"):
        assert body[side]["dynamicPricing"] is None
        static = body[side]["staticPricing"]
        assert static["currencyCode"] == "Cent" and static["providerName"] == "Amber Electric"
        combined = static["combinedPrices"]
        assert [c["monthRange"] for c in combined] == ["01-12"]
        slots = combined[0]["weekPrices"][0]["timeRange"]
        assert combined[0]["weekPrices"][0]["weekRange"] == "1-7"
        assert len(slots) == 48
        assert slots[0]["timeRange"] == "00:00-00:30" and slots[-1]["timeRange"] == "23:30-24:00"
        assert slots[19]["timeRange"] == "09:30-10:00"
        assert all(round(s["price"], 2) == s["price"] for s in slots)
    buy = {s["timeRange"]: s["price"] for s in body["buyPrice"]["staticPricing"]["combinedPrices"][0]["weekPrices"][0]["timeRange"]}
    assert decode_start(buy["09:30-10:00"] / 100, start) == pd.Timestamp("2024-06-03T00:00:00Z")  # current, in cents
    assert decode_start(buy["09:00-09:30"] / 100, start) == pd.Timestamp("2024-06-03T23:30:00Z")  # tomorrow


def test_sigenergy_and_tesla_carry_the_same_rates() -> None:
    site = make_site("Australia/Sydney", battery_kind="sigenergy")
    start = pd.Timestamp("2024-06-03T00:00:00Z")
    frame = encoded_prices(start, 30, export_ratio=0.4)
    now = pd.Timestamp("2024-06-03T03:00:00Z")
    sig = rate_table(build_sigenergy_tariff(frame, site, now), "sigenergy")
    tes = rate_table(build_tesla_tariff(frame, site, now), "tesla")
    assert sig.keys() == tes.keys()
    for name in sig:
        assert abs(sig[name][0] - tes[name][0]) < 1e-9 and abs(sig[name][1] - tes[name][1]) < 1e-9


def test_negative_prices_are_passed_through_and_station_id_comes_from_the_site() -> None:
    site = make_site("Australia/Brisbane", battery_kind="sigenergy")
    site = site.model_copy(update={"battery": site.battery.model_copy(update={"energy_site_id": "987"})})
    start = pd.Timestamp("2024-06-03T00:00:00Z")
    frame = encoded_prices(start, 30)
    frame["export_price"] = -0.05
    body = build_sigenergy_tariff(frame, site, start)
    assert body["stationId"] == 987
    prices = [s["price"] for s in body["sellPrice"]["staticPricing"]["combinedPrices"][0]["weekPrices"][0]["timeRange"]]
    assert set(prices) == {-5.0}
    assert "stationId" not in build_sigenergy_tariff(frame, make_site("Australia/Brisbane", battery_kind="sigenergy"), start)
