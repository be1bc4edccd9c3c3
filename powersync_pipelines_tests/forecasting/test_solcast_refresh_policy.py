"""When the Solcast client calls (``decide_refresh``): two simulated UTC days of 5-minute replans for one to
three rooftop sites on one key, any daylight window, any daily limit. Never over the budget, never twice
within half an hour for a site, never at night once the cache is good, and every site refreshed in a day's
daylight when the budget allows one call each."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from powersync_pipelines.forecasts.solcast import MIN_SPACING, Ledger, decide_refresh

DAY0 = pd.Timestamp("2025-01-01T00:00Z")
SLOT = pd.Timedelta(minutes=5)
SLOTS = 288


@settings(max_examples=60, deadline=None)
@given(limit=st.integers(1, 12), resources=st.integers(1, 3), length=st.integers(12, 16 * 12),
       start_frac=st.floats(0.0, 1.0))
def test_refreshes_stay_in_budget_and_are_spread_over_daylight(limit, resources, length, start_frac):
    sunrise = int(start_frac * (SLOTS - length))  # the window lies inside each UTC day

    def sun(slot: int) -> bool:
        return sunrise <= slot % SLOTS < sunrise + length

    calls: list[tuple[pd.Timestamp, int]] = []
    last_ok: dict[int, pd.Timestamp] = {}
    covered: dict[int, pd.Timestamp] = {}
    for t in range(2 * SLOTS):
        wall = DAY0 + t * SLOT
        day_end = (t // SLOTS + 1) * SLOTS
        left = SLOT * sum(sun(s) for s in range(t, day_end))
        for r in range(resources):
            used = sum(1 for w, _ in calls if w.date() == wall.date())
            ledger = Ledger(used_today=used, last_call_at=last_ok.get(r), last_ok_at=last_ok.get(r),
                            resources=resources)
            d = decide_refresh(wall=wall, covered_until=covered.get(r), ledger=ledger, limit=limit,
                               sun_up=sun(t), daylight_left=left)
            if d.call:
                assert d.why in ("no_cache", "due") and (sun(t) or d.why == "no_cache")
                calls.append((wall, r))
                last_ok[r], covered[r] = wall, wall + pd.Timedelta(hours=72)
    per_day = pd.Series([w.date() for w, _ in calls]).value_counts()
    assert per_day.max() <= limit
    for r in range(resources):
        mine = [w for w, rr in calls if rr == r]
        assert all(b - a >= MIN_SPACING for a, b in zip(mine, mine[1:], strict=False))
        if limit >= 2 * resources:  # enough for the first day's first call and a daylight call on day 2
            assert any(w >= DAY0 + pd.Timedelta(days=1) for w in mine)


def test_an_empty_cache_is_filled_at_night_but_a_good_one_waits_for_daylight():
    wall = pd.Timestamp("2025-01-01T02:00Z")
    night = {"wall": wall, "ledger": Ledger(), "limit": 10, "sun_up": False, "daylight_left": pd.Timedelta(hours=8)}
    assert decide_refresh(covered_until=None, **night).why == "no_cache"
    assert decide_refresh(covered_until=wall + pd.Timedelta(hours=30), **night).why == "night"
    assert decide_refresh(covered_until=wall + pd.Timedelta(hours=20), **night).why == "cache_short"


def test_calls_left_are_spread_over_the_daylight_left():
    wall = pd.Timestamp("2025-01-01T06:00Z")
    good = wall + pd.Timedelta(hours=40)
    # 8 h of daylight left, 4 calls left: one every 2 h
    ledger = Ledger(used_today=6, last_ok_at=wall - pd.Timedelta(minutes=110))
    args = {"wall": wall, "covered_until": good, "limit": 10, "sun_up": True, "daylight_left": pd.Timedelta(hours=8)}
    assert decide_refresh(ledger=ledger, **args).why == "not_due"
    ledger.last_ok_at = wall - pd.Timedelta(minutes=120)
    assert decide_refresh(ledger=ledger, **args).why == "due"
    ledger.resources = 2  # two roofs on the key: each gets 2 of the 4, one every 4 h
    assert decide_refresh(ledger=ledger, **args).why == "not_due"


def test_refusals_and_failures_stop_or_delay_calls():
    wall = pd.Timestamp("2025-01-01T06:00Z")
    args = {"wall": wall, "covered_until": None, "limit": 10, "sun_up": True, "daylight_left": pd.Timedelta(hours=8)}
    assert decide_refresh(ledger=Ledger(used_today=10), **args).why == "budget_spent"
    assert decide_refresh(ledger=Ledger(quota_exhausted=True), **args).why == "quota_exhausted"
    assert decide_refresh(ledger=Ledger(rejected="http_401"), **args).why == "rejected"
    third = Ledger(failures=3, last_call_at=wall - pd.Timedelta(minutes=59))  # waits 15 x 2^2 = 60 min
    assert decide_refresh(ledger=third, **args).why == "backoff"
    third.last_call_at = wall - pd.Timedelta(minutes=60)
    assert decide_refresh(ledger=third, **args).why == "no_cache"
