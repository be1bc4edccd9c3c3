"""Demand charges: the window in local time, the month's peak from stored telemetry, and a plan that respects it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.config.demand import DemandChargeConfig
from powersync_pipelines.demand import (
    avoided_demand_cost,
    demand_charge_for,
    interval_averages,
    month_peak_so_far,
    month_peaks,
    read_interval_imports,
    window_mask,
)
from powersync_pipelines.optimizer import BatteryParams, OptimizationProblem, solve
from powersync_pipelines.storage import HistoryStore

TZ = "Australia/Melbourne"
CFG = DemandChargeConfig(start="15:00", end="21:00", weekdays=["mon", "tue", "wed", "thu", "fri"], price_per_kw_month=10.0)


def test_window_is_local_time_on_the_listed_weekdays():
    idx = pd.date_range("2024-02-11T13:00Z", periods=48, freq="30min")  # Mon 00:00 local (AEDT) onwards
    local = idx.tz_convert(TZ)
    m = window_mask(idx, CFG, TZ)
    assert set(local[m].hour) == {15, 16, 17, 18, 19, 20} and set(local[m].weekday) == {0}
    sat = pd.date_range("2024-02-16T13:00Z", periods=48, freq="30min")  # Saturday
    assert not window_mask(sat, CFG, TZ).any()
    night = DemandChargeConfig(start="22:00", end="02:00", weekdays=["fri"], price_per_kw_month=1)
    idx = pd.date_range("2024-02-15T13:00Z", periods=96, freq="30min")  # Fri 00:00 .. Sat 23:30 local
    loc = idx.tz_convert(TZ)[window_mask(idx, night, TZ)]
    assert [(t.weekday(), t.hour) for t in loc[::2]] == [(4, 22), (4, 23), (5, 0), (5, 1)]  # Sat early = Fri's window


def test_the_view_averages_telemetry_per_half_hour_and_the_month_peak_follows(tmp_path):
    store = HistoryStore(tmp_path / "d.duckdb")
    ts = pd.date_range("2024-02-12T04:00Z", "2024-02-12T10:55Z", freq="5min")  # Mon 15:00-21:55 local
    imp = np.where((ts >= "2024-02-12T07:00Z") & (ts < "2024-02-12T07:30Z"), 9.0, 2.0)  # 18:00-18:30 local
    imp[ts == pd.Timestamp("2024-02-12T08:00Z")] = 20.0  # one 5-min burst: the 30-min mean is (20 + 5*2)/6 = 5
    store.upsert("telemetry", pd.DataFrame({"site_id": "s1", "ts": ts, "grid_import_kw": imp, "grid_export_kw": 0.0}),
                 ["site_id", "ts"])
    avg = read_interval_imports(store, "s1")
    assert avg.loc[pd.Timestamp("2024-02-12T07:00Z")] == pytest.approx(9.0)
    assert avg.loc[pd.Timestamp("2024-02-12T08:00Z")] == pytest.approx(5.0)
    peaks = month_peaks(avg, CFG, TZ)
    assert list(peaks["month"]) == ["2024-02"] and peaks.loc[0, "peak_kw"] == pytest.approx(9.0)
    assert peaks.loc[0, "charge"] == pytest.approx(90.0) and peaks.loc[0, "peak_at"] == pd.Timestamp("2024-02-12T07:00Z")
    # 15-min intervals come from the same telemetry
    q = read_interval_imports(store, "s1", interval_minutes=15)
    assert q.loc[pd.Timestamp("2024-02-12T08:00Z")] == pytest.approx((20 + 2 * 2) / 3)
    # only intervals that ended count as "so far"; a new month starts at zero
    assert month_peak_so_far(avg, CFG, TZ, pd.Timestamp("2024-02-12T07:20Z")) == pytest.approx(2.0)
    assert month_peak_so_far(avg, CFG, TZ, pd.Timestamp("2024-02-12T07:30Z")) == pytest.approx(9.0)
    assert month_peak_so_far(avg, CFG, TZ, pd.Timestamp("2024-03-01T00:00Z")) == 0.0  # 11:00 local on 1 March


def test_bad_telemetry_is_refused():
    with pytest.raises(ValueError, match=">= 0 kW"):
        interval_averages(pd.Series([1.0, -2.0], index=pd.date_range("2024-01-01", periods=2, freq="5min", tz="UTC")))


def _evening_problem(existing_peak: float | None):
    start = pd.Timestamp("2024-02-12T03:00Z")  # Monday 14:00 local
    n = 96  # 8 h of 5-min intervals
    idx = pd.date_range(start, periods=n, freq="5min")
    h = idx.tz_convert(TZ).hour + idx.tz_convert(TZ).minute / 60
    price = np.where((h >= 15) & (h < 16), 0.05, 0.25)  # cheap in the first window hour: tempting to charge hard
    load = np.where((h >= 18) & (h < 20), 4.0, 1.0)
    p = OptimizationProblem(start, price, price - 0.1, np.zeros(n), load, BatteryParams(13.5, 0.2, 5.0, 5.0),
                            export_limit_kw=5, import_limit_kw=15, terminal_value=0.2)
    if existing_peak is not None:
        p.demand_charge = demand_charge_for(idx, CFG, TZ, existing_peak)
    return p


def test_the_plan_lowers_the_window_peak_when_it_pays_and_reports_it():
    free = solve(_evening_problem(None))
    priced = solve(_evening_problem(0.0))
    def peak(r):
        imp = r.intervals["grid_import_kw"].to_numpy()
        m = window_mask(r.intervals.index, CFG, TZ)
        s = pd.Series(np.where(m, imp, np.nan), index=r.intervals.index).resample("30min").mean()
        return float(s.max())
    assert peak(free) > 5.5  # charging at 5 kW on top of the house in the cheap window hour
    assert peak(priced) < peak(free) - 2.0
    assert priced.extras["demand_peak_kw"] == pytest.approx(peak(priced), abs=1e-6)
    saved = avoided_demand_cost(peak(free), peak(priced), 0.0, CFG.price_per_kw_month)
    extra_energy = priced.cost - free.cost
    assert saved > extra_energy > -1e-9  # it gives up some cheap energy, for more demand charge avoided


def test_a_peak_already_set_this_month_is_sunk():
    free = solve(_evening_problem(None))
    sunk = solve(_evening_problem(12.0))  # the month already peaked at 12 kW: staying under it costs nothing
    np.testing.assert_allclose(sunk.intervals["grid_import_kw"], free.intervals["grid_import_kw"], atol=1e-6)
    assert sunk.extras["demand_peak_kw"] == 12.0
    assert avoided_demand_cost(8.0, 6.0, 12.0, 10.0) == 0.0
    assert avoided_demand_cost(15.0, 13.0, 12.0, 10.0) == pytest.approx(20.0)


def test_the_next_billing_month_is_not_in_this_months_window():
    idx = pd.date_range("2024-02-29T04:00Z", periods=48 * 6, freq="5min")  # Thu 29 Feb 15:00 local .. Fri 1 Mar
    dc = demand_charge_for(idx, CFG, TZ, 3.0)
    months = idx.tz_convert(TZ).month
    assert dc.window[months == 2].any() and not dc.window[months == 3].any()
    assert dc.existing_peak_kw == 3.0 and dc.interval_minutes == 30
