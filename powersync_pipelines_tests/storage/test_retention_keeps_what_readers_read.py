"""History retention deletes only superseded schedule rows of old plans: on both backends, for any sequence of
plans (overlapping horizons, irregular cadence, gaps in planning, several sites), everything a reader asks of
the past (``planned_rates``, the calendar history's planned cost, the latest plan, the plans table) is the same
after compaction, exactly the rows a later plan covers are gone, and compacting again deletes nothing."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powersync_pipelines.control.history import planned_rates
from powersync_pipelines.storage import HistoryStore
from powersync_pipelines.storage.retention import compact_history

BASE = pd.Timestamp("2024-06-01T00:00:00Z")
STEP = pd.Timedelta(minutes=5)


@pytest.fixture
def store(any_store):
    return any_store


def _intervals(start: pd.Timestamp, n: int, rate: float) -> pd.DataFrame:
    idx = pd.date_range(start, periods=n, freq="5min", name="interval_start")
    k = pd.Series(range(n), index=idx, dtype=float)
    return pd.DataFrame({"action": "CHARGE", "battery_charge_kw": 1.0, "battery_discharge_kw": 0.0,
                         "grid_import_kw": rate + k / 10, "grid_export_kw": (k % 3) / 4, "soc": 0.5,
                         "import_price": 0.2 + k / 100, "export_price": 0.05}, index=idx)


def _meta(created: pd.Timestamp, start: pd.Timestamp) -> dict:
    return {"created_at": created, "plan_start": start, "status": "optimal", "solver": "lp", "cost": 1.0}


@st.composite
def histories(draw) -> list[tuple[str, str, pd.Timestamp, pd.Timestamp, int, float]]:
    """Plans as (site, plan_id, created_at, first interval, intervals, rate level), created_at strictly rising
    per site: mostly the 5-minute cadence, sometimes late or early, sometimes a gap of hours."""
    plans = []
    for s in range(draw(st.integers(1, 3))):
        t = BASE + pd.Timedelta(seconds=draw(st.integers(0, 3600)))
        for k in range(draw(st.integers(1, 12))):
            step = draw(st.sampled_from([300, 300, 300, 1, 299, 301, 600, 3 * 3600]))
            t = t + pd.Timedelta(seconds=step)
            first = t.floor("5min") + STEP * draw(st.integers(-1, 2))
            plans.append((f"site{s}", f"site{s}:{k}", t, first, draw(st.integers(1, 40)),
                          draw(st.floats(0, 5, allow_nan=False, allow_subnormal=False))))
    return plans


def _store_plans(store: HistoryStore, plans) -> None:
    """One upsert per table (what ``write_plan`` does per plan), so each example stays quick on PostgreSQL."""
    meta = pd.DataFrame([{**_meta(c, f), "plan_id": p, "site_id": s} for s, p, c, f, _, _ in plans])
    rows = pd.concat([_intervals(f, n, r).assign(site_id=s, plan_id=p).reset_index() for s, p, _, f, n, r in plans])
    store.upsert("plans", meta, ["plan_id"])
    store.upsert("schedule", rows, ["site_id", "plan_id", "interval_start"])


def _clear(store: HistoryStore) -> None:
    with store.connect() as con:
        for table in ("schedule", "plans", "history_retention"):
            con.execute(f"DELETE FROM {table}")


def _expected_left(plans, keep_days: float) -> int:
    """Rows left, from the rule itself: a row goes when its plan is older than keep_days before the site's newest
    plan and a plan of the site created later covers its interval."""
    left = 0
    for s, _, c, f, n, _ in plans:
        mine = [(c2, f2, n2) for s2, _, c2, f2, n2, _ in plans if s2 == s]
        old = c < max(c2 for c2, _, _ in mine) - pd.Timedelta(days=keep_days)
        for i in range(n):
            t = f + STEP * i
            later = any(c2 > c and f2 <= t < f2 + STEP * n2 for c2, f2, n2 in mine)
            left += not (old and later)
    return left


def _readers(store: HistoryStore, sites: list[str]) -> dict:
    """Everything the product reads about the past from plans and schedule."""
    lo, hi = BASE - pd.Timedelta(days=1), BASE + pd.Timedelta(days=3)
    out: dict = {"plans": store.query("SELECT * FROM plans ORDER BY plan_id")}
    for s in sites:
        out[f"{s}/rates"] = planned_rates(store, s, lo, hi).reset_index(drop=True)
        latest = store.read_latest_plan(s)
        out[f"{s}/latest"] = (latest[0]["plan_id"], latest[1]) if latest else None
    return out


def _assert_same(before: dict, after: dict) -> None:
    assert before.keys() == after.keys()
    for key, value in before.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(value, after[key], obj=key)
        elif value is not None:
            assert value[0] == after[key][0]
            pd.testing.assert_frame_equal(value[1], after[key][1], obj=key)
        else:
            assert after[key] is None


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plans=histories(), keep_days=st.sampled_from([0.0, 0.004, 0.02, 1.0]), batch=st.integers(1, 5))
def test_any_plan_history_reads_the_same_after_compaction(store, plans, keep_days, batch):
    _clear(store)
    _store_plans(store, plans)
    sites = sorted({p[0] for p in plans})
    before = _readers(store, sites)
    total = sum(p[4] for p in plans)

    report = compact_history(store, keep_days, batch_plans=batch)

    left = _expected_left(plans, keep_days)
    assert report.table("schedule").before == total
    assert report.table("schedule").deleted == total - left
    assert report.table("schedule").after == left == int(store.query("SELECT count(*) AS n FROM schedule").n[0])
    _assert_same(before, _readers(store, sites))
    again = compact_history(store, keep_days, batch_plans=batch)
    assert again.table("schedule").deleted == 0 and again.table("schedule").after == left
    assert compact_history(store, keep_days, full=True).table("schedule").deleted == 0


def test_a_dry_run_counts_what_it_would_delete_and_changes_nothing(store):
    plans = [("home", f"p{k}", BASE + STEP * k, BASE + STEP * k, 12, 1.0) for k in range(6)]
    _store_plans(store, plans)
    dry = compact_history(store, 0.0, dry_run=True)
    assert dry.table("schedule").deleted == 5 * 11 and dry.table("schedule").after == 72 - 55
    assert int(store.query("SELECT count(*) AS n FROM schedule").n[0]) == 72
    assert store.query("SELECT count(*) AS n FROM history_retention").n[0] == 0
    assert compact_history(store, 0.0).table("schedule").deleted == 55


def test_plans_created_at_the_same_instant_keep_both_their_rows(store):
    """Neither plan is later than the other, so neither supersedes: what ``planned_rates`` may pick stays."""
    plans = [("home", "a", BASE, BASE, 6, 1.0), ("home", "b", BASE, BASE, 6, 2.0),
             ("home", "c", BASE + pd.Timedelta(hours=1), BASE + pd.Timedelta(hours=1), 6, 3.0)]
    _store_plans(store, plans)
    assert compact_history(store, 0.0).table("schedule").deleted == 0


def test_a_realistic_history_drops_to_the_rows_in_effect(store):
    """Three sites of 48 h plans (576 intervals) every 5 minutes, written with ``write_plan``; one site stops
    planning for two hours. Compacted with keep_days = 10 minutes: each old plan keeps the one interval it was in
    effect for (576 rows become 1), the plan before the gap keeps the gap, the last 10 minutes' plans stay whole."""
    keep = 10 / 1440
    gap_site_plans = [BASE + STEP * k for k in range(12)] + [BASE + STEP * k for k in range(36, 48)]
    cadence = {"amber-home": [BASE + STEP * k for k in range(24)], "octopus-flat": [BASE + STEP * k for k in range(24)],
               "gap-site": gap_site_plans}
    for site, times in cadence.items():
        for k, t in enumerate(times):
            store.write_plan(site, f"{site}:{k}", _meta(t, t), _intervals(t, 576, float(k)))
    sites = sorted(cadence)
    before = _readers(store, sites)

    report = compact_history(store, keep, batch_plans=7)

    # per site: each plan older than newest - 10 min keeps the intervals until the next plan (1 on the cadence,
    # 25 before the gap), the rest keep all 576
    expected = 0
    for times in cadence.values():
        newest = times[-1]
        for k, t in enumerate(times):
            if t >= newest - pd.Timedelta(minutes=10):
                expected += 576
            else:
                expected += int((times[k + 1] - t) / STEP)
    sched = report.table("schedule")
    assert sched.before == 72 * 576 and sched.after == expected
    assert sched.before == 41_472 and sched.after == 5_271  # 7.9 x fewer rows
    _assert_same(before, _readers(store, sites))
    assert [s.plans_examined for s in report.sites] == [21, 21, 21]
    assert report.table("plans").after == report.table("plans").before == 72
    assert report.size_before_bytes and report.size_after_bytes


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plans=histories(), keep_days=st.sampled_from([0.0, 0.004, 0.02]), split=st.floats(0.2, 0.8))
def test_daily_runs_on_a_growing_history_read_the_same_and_full_catches_up(store, plans, keep_days, split):
    """Compact, let more plans arrive, compact again (only the plans since the last run are examined): readers
    see the same history at every step, and ``full`` leaves exactly the rows the rule keeps."""
    _clear(store)
    ordered = sorted(plans, key=lambda p: p[2])
    first, rest = ordered[:max(1, int(len(ordered) * split))], ordered[max(1, int(len(ordered) * split)):]
    sites = sorted({p[0] for p in plans})
    _store_plans(store, first)
    compact_history(store, keep_days, batch_plans=2)
    if rest:
        _store_plans(store, rest)
    before = _readers(store, sites)
    compact_history(store, keep_days, batch_plans=2)
    _assert_same(before, _readers(store, sites))
    compact_history(store, keep_days, full=True)
    _assert_same(before, _readers(store, sites))
    assert int(store.query("SELECT count(*) AS n FROM schedule").n[0]) == _expected_left(plans, keep_days)
