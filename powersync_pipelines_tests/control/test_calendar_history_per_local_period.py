"""``get_calendar_history`` for every battery kind: kWh per flow and cost vs the no-battery baseline per local
day/week/month/year, from a real DuckDB file of 5-minute telemetry (Melbourne: 25 h on 7 April 2024, 23 h on
6 October 2024), through the registry and through the CLI for a Sungrow SH site."""

from __future__ import annotations

import json

import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings

from powersync_pipelines.cli import main as cli_main
from powersync_pipelines.control.history import integrate
from powersync_pipelines.control.services import ServiceInputError, run_service
from powersync_pipelines.paths import duckdb_path
from powersync_pipelines.storage import HistoryStore

from ..devices.conftest import make_site

TZ = "Australia/Melbourne"
IMPORT, EXPORT = 0.30, 0.05  # $/kWh


def fill(store: HistoryStore, site_id: str, start_local: str, end_local: str, *, skip: tuple[str, str] | None = None,
         prices: bool = True) -> None:
    """5-minute telemetry: load 1 kW, battery discharging 0.5 kW, grid importing the other 0.5 kW, no solar."""
    ts = pd.date_range(pd.Timestamp(start_local, tz=TZ), pd.Timestamp(end_local, tz=TZ), freq="5min",
                       inclusive="left").tz_convert("UTC")
    if skip is not None:
        lo, hi = (pd.Timestamp(x, tz=TZ) for x in skip)
        ts = ts[(ts < lo) | (ts >= hi)]
    rows = pd.DataFrame({"site_id": site_id, "ts": ts, "load_kw": 1.0, "battery_discharge_kw": 0.5,
                         "battery_charge_kw": 0.0, "grid_import_kw": 0.5, "grid_export_kw": 0.0, "solar_kw": 0.0,
                         "soc": 0.5})
    store.upsert("telemetry", rows, ["site_id", "ts"])
    if prices:
        p = pd.DataFrame({"site_id": site_id, "interval_start": ts, "import_price": IMPORT, "export_price": EXPORT,
                          "spike_status": "none", "is_forecast": False, "source": "test",
                          "fetched_at": ts})
        store.upsert("prices", p, ["site_id", "interval_start"])


@pytest.fixture
def site():
    return make_site({"kind": "sigenergy", "host": "127.0.0.1", "port": 1, "device_id": 247})


def history(ctx, site, **params):
    return run_service("get_calendar_history", site, params, ctx)


def test_days_across_the_end_of_dst_are_25_hours_and_costed_against_the_baseline(store, ctx, site):
    fill(store, site.id, "2024-04-06", "2024-04-09")
    out = history(ctx, site, period="day", start="2024-04-06", end="2024-04-08")
    assert out["ok"] and out["source"] == "duckdb" and out["time_zone"] == TZ
    assert [b["label"] for b in out["buckets"]] == ["2024-04-06", "2024-04-07", "2024-04-08"]
    assert [b["hours"] for b in out["buckets"]] == [24, 25, 24]
    dst = out["buckets"][1]
    assert dst["start"] == "2024-04-07T00:00:00+11:00" and dst["end"] == "2024-04-08T00:00:00+10:00"
    assert dst["energy_kwh"]["load"] == pytest.approx(25.0) and dst["energy_kwh"]["grid_import"] == pytest.approx(12.5)
    assert dst["energy_kwh"]["battery_discharge"] == pytest.approx(12.5) and dst["energy_kwh"]["solar"] == 0
    assert dst["cost"] == pytest.approx(12.5 * IMPORT) and dst["baseline_cost"] == pytest.approx(25 * IMPORT)
    assert dst["savings"] == pytest.approx(12.5 * IMPORT) and dst["priced_hours"] == pytest.approx(25)
    assert out["totals"]["energy_kwh"]["load"] == pytest.approx(73.0)


def test_the_start_of_dst_makes_a_23_hour_day(store, ctx, site):
    fill(store, site.id, "2024-10-05", "2024-10-08")
    out = history(ctx, site, period="day", start="2024-10-06", end="2024-10-06")
    (day,) = out["buckets"]
    assert day["hours"] == 23 and day["energy_kwh"]["load"] == pytest.approx(23.0)


def test_week_month_and_year_buckets_follow_the_local_calendar(store, ctx, site):
    fill(store, site.id, "2024-03-30", "2024-04-10")
    week = history(ctx, site, period="week", start="2024-04-03", end="2024-04-09")
    assert [b["label"] for b in week["buckets"]] == ["2024-W14", "2024-W15"]
    assert week["buckets"][0]["start"] == "2024-04-01T00:00:00+11:00"  # Monday, still summer time
    assert week["buckets"][0]["hours"] == 7 * 24 + 1  # the week holding the 25-hour Sunday
    assert week["buckets"][0]["energy_kwh"]["load"] == pytest.approx(169.0)
    month = history(ctx, site, period="month", start="2024-03-01", end="2024-04-30")
    assert [b["label"] for b in month["buckets"]] == ["2024-03", "2024-04"]
    assert month["buckets"][0]["energy_kwh"]["load"] == pytest.approx(2 * 24)  # 30 and 31 March
    assert month["buckets"][1]["energy_kwh"]["load"] == pytest.approx(9 * 24 + 1)
    year = history(ctx, site, period="year", start="2024-06-01")
    (y,) = year["buckets"]
    assert y["label"] == "2024" and y["hours"] == 366 * 24
    assert y["energy_kwh"]["load"] == pytest.approx(11 * 24 + 1) and y["cost"] == pytest.approx((11 * 24 + 1) * 0.15)


def test_a_gap_in_telemetry_counts_one_sample_for_at_most_15_minutes(store, ctx, site):
    fill(store, site.id, "2024-05-01", "2024-05-02", skip=("2024-05-01 10:00", "2024-05-01 12:00"))
    (day,) = history(ctx, site, period="day", start="2024-05-01")["buckets"]
    # the 09:55 sample holds until 10:10, not until 12:00
    assert day["covered_hours"] == pytest.approx(24 - 110 / 60, abs=1e-3)
    assert day["energy_kwh"]["load"] == pytest.approx(24 - 110 / 60, abs=1e-3)


def test_no_prices_means_energy_without_a_cost(store, ctx, site):
    fill(store, site.id, "2024-05-01", "2024-05-02", prices=False)
    (day,) = history(ctx, site, period="day", start="2024-05-01")["buckets"]
    assert day["energy_kwh"]["load"] == pytest.approx(24) and day["cost"] is None and day["savings"] is None
    assert day["priced_hours"] == 0


def test_without_start_and_end_the_period_containing_now(store, ctx, site):
    fill(store, site.id, "2024-05-01", "2024-05-02")
    out = history(ctx, site, period="month", now="2024-05-20T03:00:00Z")
    assert [b["label"] for b in out["buckets"]] == ["2024-05"]
    assert out["buckets"][0]["energy_kwh"]["load"] == pytest.approx(24)


@pytest.mark.parametrize(("params", "match"), [
    ({"period": "fortnight"}, "--period must be one of"),
    ({"start": "2024-13-01"}, "--start must be a date YYYY-MM-DD"),
    ({"start": "2024-05-02", "end": "2024-05-01"}, "--end 2024-05-01 is before --start 2024-05-02"),
    ({"period": "day", "start": "1990-01-01", "end": "2024-01-01"}, "spans more than"),
    ({"source": "tesla"}, "--source tesla needs a Tesla Powerwall"),
    ({"now": "soon"}, "--now 'soon' is not an ISO timestamp"),
])
def test_bad_input_is_one_line_naming_the_flag(ctx, site, params, match):
    with pytest.raises(ServiceInputError, match=match) as err:
        history(ctx, site, **params)
    assert "\n" not in str(err.value)


def test_a_sungrow_site_through_the_cli(tmp_path, capsys):
    site = make_site({"kind": "sungrow_sh", "host": "127.0.0.1", "port": 1502, "device_id": 1}, site_id="home")
    doc = json.loads(site.model_dump_json(exclude={"base_dir"}, exclude_none=True))
    sites = tmp_path / "sites.yaml"
    sites.write_text(yaml.safe_dump({"sites": [doc]}))
    fill(HistoryStore(duckdb_path()), "home", "2024-04-06", "2024-04-08")
    capsys.readouterr()
    rc = cli_main(["service", "get_calendar_history", "--site-id", "home", "--sites", str(sites), "--period", "day",
                   "--start", "2024-04-07", "--end", "2024-04-07"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["ok"] and out["buckets"][0]["energy_kwh"]["load"] == pytest.approx(25.0)
    rc = cli_main(["service", "get_calendar_history", "--site-id", "home", "--sites", str(sites), "--period", "week",
                   "--end", "yesterday"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and "--end must be a date YYYY-MM-DD" in err


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.floats(0, 10)), min_size=1, max_size=40),
       st.lists(st.integers(0, 2000), min_size=1, max_size=8))
def test_buckets_split_energy_without_losing_any(samples, cuts):
    """Whatever the bucket edges, the buckets add up to the whole integral (no energy lost or doubled)."""
    minute = 60 * 10**9
    starts, ends, rates, t = [], [], [], 0
    for length, rate in samples:
        starts.append(t)
        ends.append(t + length * minute)
        rates.append(rate)
        t += (length + length % 3) * minute  # some samples leave a gap
    total = sum(r * (e - s) / 3.6e12 for s, e, r in zip(starts, ends, rates, strict=True))
    edges = np.array(sorted({0, t, *(c * minute for c in cuts if c * minute < t)}), dtype=np.int64)
    parts = integrate(np.array(starts), np.array(ends), np.array(rates), edges)
    assert parts.sum() == pytest.approx(total, abs=1e-9) and (parts >= -1e-12).all()


def _plan(store: HistoryStore, site_id: str, plan_id: str, created: str, start_local: str, hours: int,
          import_kw: float) -> None:
    idx = pd.date_range(pd.Timestamp(start_local, tz=TZ), periods=hours * 12, freq="5min").tz_convert("UTC")
    rows = pd.DataFrame({"action": "IDLE", "battery_charge_kw": 0.0, "battery_discharge_kw": 0.0,
                         "grid_import_kw": import_kw, "grid_export_kw": 0.0, "soc": 0.5, "import_price": IMPORT,
                         "export_price": EXPORT}, index=idx)
    meta = {"created_at": pd.Timestamp(created), "plan_start": idx[0], "status": "optimal", "solver": "highs"}
    store.write_plan(site_id, plan_id, meta, rows)


def test_planned_cost_prices_each_interval_by_the_latest_plan_covering_it(store, ctx, site):
    _plan(store, site.id, "early", "2024-04-30T00:00:00Z", "2024-05-01 00:00", 24, import_kw=2.0)
    _plan(store, site.id, "late", "2024-04-30T12:00:00Z", "2024-05-01 12:00", 12, import_kw=1.0)
    days = history(ctx, site, period="day", start="2024-05-01", end="2024-05-02")["buckets"]
    assert days[0]["planned_cost"] == pytest.approx((12 * 2.0 + 12 * 1.0) * IMPORT)
    assert days[1]["planned_cost"] is None and days[0]["cost"] is None  # a plan but no telemetry


def test_solar_charging_the_battery_saves_the_export_it_would_have_made(store, ctx, site):
    """Midday: 3 kW solar, 1 kW load, the battery takes 2 kW; without it 2 kW would have been exported."""
    ts = pd.date_range(pd.Timestamp("2024-05-01 10:00", tz=TZ), periods=12, freq="5min").tz_convert("UTC")
    rows = pd.DataFrame({"site_id": site.id, "ts": ts, "load_kw": 1.0, "solar_kw": 3.0, "battery_charge_kw": 2.0,
                         "battery_discharge_kw": 0.0, "grid_import_kw": 0.0, "grid_export_kw": 0.0})
    store.upsert("telemetry", rows, ["site_id", "ts"])
    store.upsert("prices", pd.DataFrame({"site_id": site.id, "interval_start": ts[::6], "import_price": IMPORT,
                                         "export_price": EXPORT, "spike_status": "none", "is_forecast": False,
                                         "source": "test", "fetched_at": ts[0]}), ["site_id", "interval_start"])
    (day,) = history(ctx, site, period="day", start="2024-05-01")["buckets"]
    assert day["energy_kwh"]["solar"] == pytest.approx(3.0) and day["energy_kwh"]["battery_charge"] == pytest.approx(2)
    assert day["cost"] == 0 and day["baseline_cost"] == pytest.approx(-2.0 * EXPORT)  # 30-min prices cover it all
    assert day["savings"] == pytest.approx(-2.0 * EXPORT) and day["priced_hours"] == pytest.approx(1.0)
