"""Spike protection, export boost and chip mode: window edges, midnight wrap, DST, and real prices kept."""

from __future__ import annotations

import pandas as pd
import pytest

from powersync_pipelines.config import SiteConfigError
from powersync_pipelines.config.tariff_features import tariff_features
from powersync_pipelines.schemas import finalize_price_frame
from powersync_pipelines.tariffs.adjustments import apply_adjustments, is_adjusted
from powersync_pipelines.tariffs.tesla import build_tesla_tariff

from .factories import make_site


def _flat(start: str, hours: float, imp: float = 0.25, exp: float = 0.10, freq: str = "5min") -> pd.DataFrame:
    idx = pd.date_range(pd.Timestamp(start), periods=int(hours * 60 / int(freq[:-3])), freq=freq, tz="UTC")
    df = pd.DataFrame({"import_price": imp, "export_price": exp, "spike_status": "none"}, index=idx)
    return finalize_price_frame(df, "test", fetched_at=idx[0])


def _local(df: pd.DataFrame, tz: str, col: str = "export_price") -> pd.Series:
    return pd.Series(df[col].to_numpy(), index=df.index.tz_convert(tz).strftime("%Y-%m-%d %H:%M"))


def test_export_boost_applies_inside_the_window_edges_only() -> None:
    site = make_site("Australia/Brisbane", features={"spike_protection": False,
                                                     "export_boost": {"offset_c": 5, "floor_c": 12}})
    out = apply_adjustments(_flat("2024-06-03T00:00:00Z", 24), site)  # 10:00 Brisbane onwards
    s = _local(out, "Australia/Brisbane")
    assert s["2024-06-03 16:55"] == pytest.approx(0.10)
    assert s["2024-06-03 17:00"] == pytest.approx(0.15)  # max(0.10 + 0.05, 0.12)
    assert s["2024-06-03 20:55"] == pytest.approx(0.15)
    assert s["2024-06-03 21:00"] == pytest.approx(0.10)  # end is exclusive
    assert (out["export_price_real"] == 0.10).all()  # real prices kept for the optimizer
    assert out.loc[out["export_price"] != out["export_price_real"], "adjustments"].eq("export_boost").all()


def test_export_boost_floor_and_activation_threshold() -> None:
    site = make_site("Australia/Brisbane", features={
        "spike_protection": False, "export_boost": {"offset_c": 2, "floor_c": 20, "threshold_c": 8}})
    frame = _flat("2024-06-03T07:00:00Z", 2)  # 17:00-19:00 Brisbane
    frame.iloc[:12, frame.columns.get_loc("export_price")] = 0.05  # below threshold: untouched
    out = apply_adjustments(frame, site)
    assert out["export_price"].iloc[:12].eq(0.05).all()
    assert out["export_price"].iloc[12:].to_numpy() == pytest.approx(0.20)  # 0.10 + 0.02 < floor 0.20


def test_chip_mode_suppresses_overnight_exports_across_midnight() -> None:
    site = make_site("Australia/Brisbane", features={"spike_protection": False, "chip_mode": {}})
    # chip_mode: {} means defaults but *off*; enabling needs a key
    assert tariff_features(site).chip_mode is None
    site = make_site("Australia/Brisbane", features={"spike_protection": False, "chip_mode": {"enabled": True}})
    frame = _flat("2024-06-03T11:00:00Z", 10)  # 21:00 → 07:00 Brisbane
    frame.loc[frame.index.tz_convert("Australia/Brisbane").strftime("%H:%M") == "23:00", "export_price"] = 0.35
    s = _local(apply_adjustments(frame, site), "Australia/Brisbane")
    assert s["2024-06-03 21:55"] == pytest.approx(0.10)
    assert s["2024-06-03 22:00"] == 0.0
    assert s["2024-06-03 23:00"] == pytest.approx(0.35)  # >= 30 c threshold: allowed
    assert s["2024-06-04 00:00"] == 0.0 and s["2024-06-04 05:55"] == 0.0
    assert s["2024-06-04 06:00"] == pytest.approx(0.10)


def test_chip_mode_tests_the_unboosted_price() -> None:
    site = make_site("Australia/Brisbane", features={
        "spike_protection": False, "chip_mode": {"enabled": True, "start": "20:00", "end": "06:00"},
        "export_boost": {"offset_c": 25}})
    out = apply_adjustments(_flat("2024-06-03T10:00:00Z", 1), site)  # 20:00-21:00: boosted to 35 c, real 10 c
    assert (out["export_price"] == 0.0).all()
    assert set(out["adjustments"]) == {"export_boost,chip_mode"}


def test_windows_follow_the_wall_clock_on_dst_days() -> None:
    # Sydney spring forward 2024-10-06 02:00 -> 03:00; chip window 22:00-06:00 local has only 7 real hours.
    site = make_site("Australia/Sydney", features={"spike_protection": False, "chip_mode": {"enabled": True}})
    out = apply_adjustments(_flat("2024-10-05T10:00:00Z", 12), site)  # 20:00 AEST → 09:00 AEDT
    suppressed = out[out["export_price"] == 0.0]
    assert len(suppressed) == 7 * 12
    assert suppressed.index[0] == pd.Timestamp("2024-10-05T12:00Z")  # 22:00 AEST
    assert suppressed.index[-1] == pd.Timestamp("2024-10-05T18:55Z")  # 05:55 AEDT
    # London fall back 2024-10-27 02:00 BST -> 01:00 GMT: boost window 00:00-03:00 has 4 real hours.
    site = make_site("Europe/London", provider={"kind": "octopus", "gsp": "C"},
                     features={"spike_protection": False, "export_boost": {"offset_c": 1, "start": "00:00", "end": "03:00"}})
    out = apply_adjustments(_flat("2024-10-26T20:00:00Z", 10, freq="30min"), site)
    assert (out["export_price"] > 0.10).sum() == 8  # eight half hours


def test_spike_protection_makes_grid_charging_unprofitable() -> None:
    site = make_site("Australia/Adelaide", provider={"kind": "amber", "site_id": "X", "token_env": "T"},
                     features={"spike_protection": True, "export_boost": {"offset_c": 10, "start": "00:00", "end": "23:59"}})
    frame = _flat("2024-01-10T00:00:00Z", 6)
    frame.iloc[30, frame.columns.get_loc("export_price")] = 2.0
    frame.iloc[40:43, frame.columns.get_loc("spike_status")] = ["potential", "spike", "potential"]
    frame.iloc[41, frame.columns.get_loc("import_price")] = 9.0  # never *lowered*
    out = apply_adjustments(frame, site)
    best_sell = out["export_price"].max()  # after the boost
    assert best_sell == pytest.approx(2.10)
    assert out["import_price"].iloc[40] == pytest.approx(best_sell + 1.0)
    assert out["import_price"].iloc[41] == 9.0
    assert out["spike_protected"].sum() == 3 and out["import_price"].iloc[39] == 0.25
    # the tariff keeps the protected half hour's highest buy instead of diluting it over six rows
    buy = build_tesla_tariff(out, site, pd.Timestamp("2024-01-10T00:00:00Z"))["tariff_content_v2"]
    rates = buy["energy_charges"]["Summer"]["rates"]
    slot = out.index[40].tz_convert("Australia/Adelaide").floor("30min")
    assert rates[f"PERIOD_{slot.hour:02d}_{slot.minute:02d}"] == 9.0


def test_payload_sees_adjusted_prices_and_adjusting_twice_is_refused() -> None:
    site = make_site("Australia/Brisbane", features={"spike_protection": False, "export_boost": {"offset_c": 5}})
    frame = _flat("2024-06-03T07:00:00Z", 24)
    adjusted = apply_adjustments(frame, site)
    assert is_adjusted(adjusted) and not is_adjusted(frame)
    now = pd.Timestamp("2024-06-03T07:00:00Z")
    assert build_tesla_tariff(frame, site, now) == build_tesla_tariff(adjusted, site, now)
    sell = build_tesla_tariff(frame, site, now)["tariff_content_v2"]["sell_tariff"]["energy_charges"]["Summer"]["rates"]
    assert sell["PERIOD_17_00"] == 0.15 and sell["PERIOD_21_00"] == 0.10
    with pytest.raises(ValueError, match="already adjusted"):
        apply_adjustments(adjusted, site)


def test_bad_feature_settings_name_site_and_field() -> None:
    # the sites loader validates these sections up front, so the error arrives as a SiteConfigError
    bad = SiteConfigError
    with pytest.raises(bad, match=r"site 't1': features.export_boost.start: .*pattern"):
        tariff_features(make_site(features={"export_boost": {"start": "25:00"}}))
    with pytest.raises(bad, match=r"features.chip_mode.threshold: unknown key"):
        tariff_features(make_site(features={"chip_mode": {"threshold": 30}}))
    with pytest.raises(bad, match=r"release_c .* must be >= trigger_c"):
        tariff_features(make_site(features={"curtailment": {"trigger_c": 2, "release_c": 1}}))
    with pytest.raises(bad, match="empty window"):
        tariff_features(make_site(features={"chip_mode": {"start": "22:00", "end": "22:00"}}))
