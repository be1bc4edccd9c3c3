"""The curtailment state machine: trigger, hysteresis on release, minimum hold, no flapping."""

from __future__ import annotations

import pandas as pd

from powersync_pipelines.config.tariff_features import CurtailmentSettings
from powersync_pipelines.schemas import finalize_price_frame
from powersync_pipelines.tariffs.curtailment import (
    CurtailState,
    current_export_price,
    curtailment_schedule,
    next_state,
)

T0 = pd.Timestamp("2024-10-20T01:00:00Z")
CFG = CurtailmentSettings(trigger_c=0.0, release_c=1.0, min_hold_minutes=10)


def _at(minutes: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=minutes)


def test_curtails_at_or_below_trigger_and_releases_only_above_release() -> None:
    s = next_state(CurtailState(), 0.001, _at(0), CFG)
    assert not s.changed and not s.state.curtailed
    s = next_state(s.state, 0.0, _at(5), CFG)  # exactly the trigger
    assert s.changed and s.state.curtailed and s.state.since == _at(5)
    s2 = next_state(s.state, 0.005, _at(20), CFG)  # 0.5 c: between trigger and release
    assert not s2.changed and s2.state.curtailed and "staying curtailed" in s2.reason
    s3 = next_state(s2.state, 0.01, _at(25), CFG)  # exactly the release, hold passed
    assert s3.changed and not s3.state.curtailed


def test_minimum_hold_blocks_early_release_and_early_recurtail() -> None:
    s = next_state(CurtailState(), -0.02, _at(0), CFG).state
    early = next_state(s, 0.05, _at(5), CFG)
    assert not early.changed and early.state.curtailed and "less than 10 min" in early.reason
    released = next_state(s, 0.05, _at(10), CFG).state
    assert not released.curtailed
    again = next_state(released, -0.01, _at(15), CFG)
    assert not again.changed and not again.state.curtailed
    assert next_state(released, -0.01, _at(20), CFG).state.curtailed


def test_missing_price_keeps_state_and_disabled_releases() -> None:
    s = next_state(CurtailState(), -0.02, _at(0), CFG).state
    assert next_state(s, None, _at(30), CFG).state == s
    assert next_state(s, float("nan"), _at(30), CFG).state == s
    off = CurtailmentSettings(enabled=False)
    step = next_state(s, -0.5, _at(1), off)
    assert step.changed and not step.state.curtailed


def test_schedule_over_a_noisy_midday_does_not_flap() -> None:
    # export price wobbling around 0 c every 5 min, like a spring midday in SA
    wobble = [0.002, -0.001, 0.003, -0.002, 0.004, 0.008, -0.001, 0.009, 0.012, 0.011, 0.02, -0.003, 0.015, 0.02]
    idx = pd.date_range(T0, periods=len(wobble), freq="5min", tz="UTC")
    frame = finalize_price_frame(pd.DataFrame({"import_price": 0.1, "export_price": wobble}, index=idx), "t")
    sched = curtailment_schedule(frame, CFG)
    # curtail at -0.1 c; hold through 0.3-0.9 c; release at 1.2 c; curtail at -0.3 c; release 10 min later
    assert list(sched.index[sched["changed"]]) == [idx[1], idx[8], idx[11], idx[13]]
    naive = (frame["export_price"] <= 0).astype(int).diff().abs().sum()
    assert naive == 8
    state = CurtailState.from_dict(CurtailState(True, idx[3]).to_dict())
    assert state == CurtailState(True, idx[3])


def test_current_export_price_is_the_interval_containing_now_and_not_stale() -> None:
    idx = pd.date_range(T0, periods=6, freq="5min", tz="UTC")
    frame = finalize_price_frame(pd.DataFrame({"import_price": 0.1, "export_price": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]},
                                              index=idx), "t")
    assert current_export_price(frame, _at(7)) == 0.2
    assert current_export_price(frame, _at(-1)) is None
    assert current_export_price(frame, _at(60)) is None  # last price 35 min old on a 5-min grid
