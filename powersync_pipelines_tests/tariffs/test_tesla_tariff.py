"""The Tesla dynamic tariff: real-sample structure, rolling 24 h rates, Tesla's rate rules, DST and hashing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from powersync_pipelines.paths import shared_real_data
from powersync_pipelines.tariffs.periods import PERIOD_NAMES, TariffError
from powersync_pipelines.tariffs.tesla import build_tesla_tariff, payload_hash

from .factories import decode_start, encoded_prices, make_site

FLOW_POWER = {"kind": "flow_power", "region": "NSW1"}


def _sample() -> dict:
    real = shared_real_data()
    path = real / "tesla" / "python-tesla-fleet-api" / "tariff_v2_sample.json" if real else None
    if path is None or not path.exists():
        pytest.skip("real Tesla sample not available (../shared/data/real absent)")
    return json.loads(path.read_text())["response"]["tariff_content_v2"]


def _buy(payload: dict) -> dict[str, float]:
    return payload["tariff_content_v2"]["energy_charges"]["Summer"]["rates"]


def _sell(payload: dict) -> dict[str, float]:
    return payload["tariff_content_v2"]["sell_tariff"]["energy_charges"]["Summer"]["rates"]


def test_payload_matches_real_sample_structure_except_rates() -> None:
    sample = _sample()
    site = make_site("Australia/Sydney", provider=FLOW_POWER)
    now = pd.Timestamp("2024-06-03T02:07:00Z")
    payload = build_tesla_tariff(encoded_prices(now - pd.Timedelta(hours=2), 30), site, now)
    ours = payload["tariff_content_v2"]
    assert list(payload) == ["tariff_content_v2"]
    assert list(ours) == list(sample)
    for key in ("code", "name", "utility", "currency", "version", "daily_charges", "demand_charges", "seasons"):
        assert ours[key] == sample[key], key
    assert ours["sell_tariff"]["name"] == sample["sell_tariff"]["name"]
    assert ours["sell_tariff"]["seasons"] == sample["sell_tariff"]["seasons"]
    for ours_ec, theirs_ec in ((ours["energy_charges"], sample["energy_charges"]),
                               (ours["sell_tariff"]["energy_charges"], sample["sell_tariff"]["energy_charges"])):
        assert ours_ec["ALL"] == theirs_ec["ALL"] and ours_ec["Winter"] == theirs_ec["Winter"]
        assert list(ours_ec["Summer"]["rates"]) == list(theirs_ec["Summer"]["rates"]) == list(PERIOD_NAMES)
    assert json.loads(json.dumps(payload)) == payload  # plain JSON types only


def test_rates_are_half_hour_means_of_the_next_24h() -> None:
    site = make_site("Australia/Brisbane")
    start = pd.Timestamp("2024-06-03T00:00:00Z")
    now = pd.Timestamp("2024-06-03T05:41:00Z")  # 15:41 Brisbane: current period 15:30
    payload = build_tesla_tariff(encoded_prices(start, 48), site, now)
    buy = _buy(payload)
    assert decode_start(buy["PERIOD_15_30"], start) == pd.Timestamp("2024-06-03T05:30:00Z")  # current, today
    assert decode_start(buy["PERIOD_16_00"], start) == pd.Timestamp("2024-06-03T06:00:00Z")
    assert decode_start(buy["PERIOD_15_00"], start) == pd.Timestamp("2024-06-04T05:00:00Z")  # passed: tomorrow
    assert decode_start(buy["PERIOD_00_00"], start) == pd.Timestamp("2024-06-03T14:00:00Z")
    # 30-min mean of six 5-min prices, to 4 dp
    frame = encoded_prices(start, 48)
    expect = frame.loc["2024-06-03T06:00Z":"2024-06-03T06:25Z", "import_price"].mean()
    assert buy["PERIOD_16_00"] == round(expect, 4)
    assert all(isinstance(v, float) and round(v, 4) == v for v in buy.values())


def test_thirty_minute_frames_give_the_same_rates_as_five_minute_frames() -> None:
    site = make_site("Europe/London", provider={"kind": "octopus", "gsp": "C"})
    start = pd.Timestamp("2024-06-03T00:00:00Z")
    now = pd.Timestamp("2024-06-03T09:10:00Z")
    five = build_tesla_tariff(encoded_prices(start, 48), site, now)
    thirty = build_tesla_tariff(encoded_prices(start, 48, freq="30min"), site, now)
    assert _buy(five) == _buy(thirty)
    assert five["tariff_content_v2"]["currency"] == "GBP"


def test_negative_rates_clamped_and_sell_never_above_buy() -> None:
    site = make_site("Australia/Sydney")
    start = pd.Timestamp("2024-06-03T00:00:00Z")
    now = pd.Timestamp("2024-06-03T00:00:00Z")
    frame = encoded_prices(start, 30)
    frame.loc[:"2024-06-03T00:55Z", "import_price"] = -0.12345  # paid to import
    frame.loc[:"2024-06-03T00:55Z", "export_price"] = -0.2
    frame.loc["2024-06-03T03:00Z":"2024-06-03T03:25Z", "export_price"] = 0.5  # sell above buy
    frame.loc["2024-06-03T03:00Z":"2024-06-03T03:25Z", "import_price"] = 0.1
    payload = build_tesla_tariff(frame, site, now)
    buy, sell = _buy(payload), _sell(payload)
    local = "PERIOD_10_00"  # 00:00Z is 10:00 AEST
    assert buy[local] == 0.0 and sell[local] == 0.0 and str(buy[local]) == "0.0"
    assert sell["PERIOD_13_00"] == 0.5 and buy["PERIOD_13_00"] == 0.5  # Tesla's rule: buy raised to sell
    assert all(sell[n] <= buy[n] for n in PERIOD_NAMES)
    assert min(buy.values()) >= 0 and min(sell.values()) >= 0


def test_plan_intent_picks_the_dip_for_charging_and_the_peak_for_export() -> None:
    site = make_site("Australia/Brisbane")
    start = pd.Timestamp("2024-06-03T00:00:00Z")
    now = pd.Timestamp("2024-06-03T00:00:00Z")
    frame = encoded_prices(start, 30)
    plan_idx = pd.date_range(now, periods=288, freq="5min", tz="UTC")
    plan = pd.DataFrame({"action": "SELF_CONSUMPTION"}, index=plan_idx)
    plan.loc["2024-06-03T01:00Z":"2024-06-03T01:25Z", "action"] = "CHARGE"
    plan.loc["2024-06-03T02:00Z":"2024-06-03T02:25Z", "action"] = "EXPORT"
    buy, sell = _buy(build_tesla_tariff(frame, site, now, plan)), _sell(build_tesla_tariff(frame, site, now, plan))
    assert buy["PERIOD_11_00"] == round(frame.loc["2024-06-03T01:00Z", "import_price"], 4)  # min of the half hour
    assert sell["PERIOD_12_00"] == round(frame.loc["2024-06-03T02:25Z", "export_price"], 4)  # max of the half hour
    plain = _buy(build_tesla_tariff(frame, site, now))
    assert plain["PERIOD_11_00"] > buy["PERIOD_11_00"]


def test_gaps_are_filled_from_neighbours_and_empty_windows_refused() -> None:
    site = make_site("Australia/Brisbane")
    start = pd.Timestamp("2024-06-03T00:00:00Z")
    frame = encoded_prices(start, 30)
    holed = frame.drop(frame.loc["2024-06-03T04:00Z":"2024-06-03T04:55Z"].index)
    buy = _buy(build_tesla_tariff(holed, site, start))
    assert buy["PERIOD_14_00"] == buy["PERIOD_14_30"] == buy["PERIOD_13_30"]  # carried forward
    with pytest.raises(TariffError, match="no prices in the 24 h"):
        build_tesla_tariff(frame, site, start + pd.Timedelta(days=3))


def _oracle(name: str, tz: ZoneInfo, slot_start: pd.Timestamp) -> pd.Timestamp:
    """Next real occurrence of a wall-clock half hour at/after ``slot_start``, by zoneinfo folds (independent)."""
    h, m = int(name[7:9]), int(name[10:12])
    first_day = slot_start.tz_convert(tz).date()
    found = []
    for d in range(-1, 3):
        day = first_day + timedelta(days=d)
        for fold in (0, 1):
            local = datetime(day.year, day.month, day.day, h, m, fold=fold, tzinfo=tz)
            utc = pd.Timestamp(local).tz_convert("UTC")
            back = utc.tz_convert(tz)
            if (back.hour, back.minute) == (h, m) and utc >= slot_start:
                found.append(utc)
    return min(found)


# (zone, now UTC, instant the clock jumps forward inside the window or None)
DST_CASES = [
    ("Australia/Sydney", "2024-04-06T13:07:00Z", None),  # fall back 03:00 AEDT -> 02:00 AEST at 16:00Z
    ("Australia/Sydney", "2024-04-06T15:37:00Z", None),  # during the first 02:30: 02:00 is 23 min away
    ("Australia/Sydney", "2024-10-05T13:07:00Z", "2024-10-05T16:00:00Z"),  # spring forward 02:00 -> 03:00
    ("Australia/Adelaide", "2024-04-06T12:37:00Z", None),  # fall back at 16:30Z (+10:30 -> +9:30)
    ("Australia/Adelaide", "2024-10-05T13:07:00Z", "2024-10-05T16:30:00Z"),  # spring forward (+9:30 -> +10:30)
    ("Europe/London", "2024-03-30T22:07:00Z", "2024-03-31T01:00:00Z"),  # 01:00 GMT -> 02:00 BST
    ("Europe/London", "2024-10-26T23:37:00Z", None),  # 02:00 BST -> 01:00 GMT at 01:00Z
    ("Australia/Brisbane", "2024-10-05T13:07:00Z", None),  # no DST
]


@pytest.mark.parametrize(("zone", "now", "jump"), DST_CASES)
def test_every_period_carries_its_next_real_half_hour_across_dst(zone: str, now: str, jump: str | None) -> None:
    tz = ZoneInfo(zone)
    site = make_site(zone)
    now_ts = pd.Timestamp(now)
    start = now_ts.floor("30min") - pd.Timedelta(hours=1)
    payload = build_tesla_tariff(encoded_prices(start, 30), site, now_ts)
    buy = _buy(payload)
    assert list(buy) == list(PERIOD_NAMES)
    slot = now_ts.floor("30min")
    seen = set()
    for name in PERIOD_NAMES:
        got = decode_start(buy[name], start)
        expected = _oracle(name, tz, slot)
        if jump is not None and expected - slot >= pd.Timedelta(hours=24):  # skipped tonight: the clock jumps in
            expected = pd.Timestamp(jump)
        assert got == expected, (zone, name, got, expected)
        seen.add(got)
    local_now = now_ts.tz_convert(tz)
    current = f"PERIOD_{local_now.hour:02d}_{local_now.minute // 30 * 30:02d}"
    assert decode_start(buy[current], start) == slot
    assert len(seen) == (46 if jump else 48)  # the skipped hour (2 names) shares the half hour after the jump


def test_half_hour_offset_zone_names_periods_by_local_start() -> None:
    site = make_site("Australia/Adelaide")
    start = pd.Timestamp("2024-06-03T00:00:00Z")
    now = pd.Timestamp("2024-06-03T00:00:00Z")  # 09:30 ACST (+9:30)
    buy = _buy(build_tesla_tariff(encoded_prices(start, 30), site, now))
    assert decode_start(buy["PERIOD_09_30"], start) == now
    assert decode_start(buy["PERIOD_10_00"], start) == now + pd.Timedelta(minutes=30)


def test_payload_hash_is_stable_and_sensitive() -> None:
    site = make_site("Australia/Sydney")
    start = pd.Timestamp("2024-06-03T00:00:00Z")
    frame = encoded_prices(start, 30)
    a = build_tesla_tariff(frame, site, start)
    b = build_tesla_tariff(frame.copy(), site, start + pd.Timedelta(minutes=4))  # same half hour
    reordered = json.loads(json.dumps(a, sort_keys=True))
    assert payload_hash(a) == payload_hash(b) == payload_hash(reordered)
    changed = json.loads(json.dumps(a))
    changed["tariff_content_v2"]["energy_charges"]["Summer"]["rates"]["PERIOD_12_00"] += 0.0001
    assert payload_hash(changed) != payload_hash(a)
    assert len(payload_hash(a)) == 64
