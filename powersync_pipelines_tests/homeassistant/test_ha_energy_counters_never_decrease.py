"""The lifetime energy counters HA's energy dashboard reads (``total_increasing`` kWh) are the calendar history's
lifetime totals up to the newest telemetry sample and never go down: appended telemetry only adds, and a corrected
row that lowers the integral leaves the published value at its stored high-water mark (HA would otherwise count a
meter reset). On a real broker across publishes, and as a property over any sequence of appends and corrections."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powersync_pipelines.config import load_sites
from powersync_pipelines.control.history import FLOWS, calendar_history
from powersync_pipelines.homeassistant.discovery import energy_key
from powersync_pipelines.homeassistant.energy import energy_counters
from powersync_pipelines.paths import duckdb_path
from powersync_pipelines.storage import HistoryStore

from .serving import T

T0 = pd.Timestamp("2024-02-12T18:00:00Z")  # 05:00 in Melbourne on the demo's replay day
STEP = pd.Timedelta(minutes=5)
KEYS = [energy_key(f) for f in FLOWS]


def sample(store: HistoryStore, i: int, grid_import: float) -> None:
    store.upsert_telemetry("demo", T0 + i * STEP, {
        "grid_import_kw": grid_import, "grid_export_kw": 0.5, "battery_charge_kw": 1.0, "battery_discharge_kw": 0.0,
        "solar_kw": 3.0, "load_kw": 1.5, "soc": 0.5})


def republished(rec) -> dict:
    """HA's birth message makes the bridge publish again; the state document it publishes then."""
    while not rec.inbox.empty():  # the earlier publishes' messages
        rec.inbox.get_nowait()
    rec.publish("homeassistant/status", "online")
    return rec.wait_for(T.state).json()


def test_counters_hold_through_a_correction_and_grow_with_new_telemetry_across_publishes(bridge, rec):
    store = HistoryStore(duckdb_path())
    for i in range(12):
        sample(store, i, 2.0)
    first = republished(rec)
    assert first["energy_grid_import_kwh"] == round(11 * 2.0 * 5 / 60, 3)  # up to the newest sample, not beyond
    assert first["energy_solar_kwh"] == round(11 * 3.0 * 5 / 60, 3)

    sample(store, 5, 0.0)  # a corrected reading: the integral drops by 1/6 kWh
    second = republished(rec)
    assert second["energy_grid_import_kwh"] == first["energy_grid_import_kwh"]  # held, not decreased

    for i in range(12, 15):
        sample(store, i, 2.0)
    third = republished(rec)
    assert third["energy_grid_import_kwh"] == round(13 * 2.0 * 5 / 60, 3)  # 14 intervals, one of them at 0 kW
    for key in KEYS:
        assert first[key] <= second[key] <= third[key], key


ops = st.lists(st.one_of(st.tuples(st.just("append"), st.floats(0, 10), st.integers(1, 20)),
                         st.tuples(st.just("correct"), st.floats(0, 10), st.integers(0, 30))),
               min_size=1, max_size=4)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> HistoryStore:
    """One migrated history file for every example (each example starts by emptying its tables)."""
    store = HistoryStore(tmp_path_factory.mktemp("counters") / "h.duckdb")
    store.migrate()
    return store


@settings(max_examples=10, deadline=None)  # each step opens the DuckDB file ~10 times
@given(sequence=ops)
def test_published_counters_never_decrease_over_appends_and_corrections(scratch, sequence):
    site = load_sites().get("demo")
    with scratch.connect() as con:
        con.execute("DELETE FROM telemetry; DELETE FROM ha_counters")
    last, previous, appended_only = -1, None, True
    for op, kw, arg in sequence:
        if op == "append":
            last += arg  # gaps of 5 .. 100 min (longer than the 15-min gap limit too)
            sample(scratch, last, kw)
        elif last >= 0:
            sample(scratch, min(arg, last), kw)
            appended_only = False
        out = energy_counters(scratch, site, T0)
        if previous is not None:
            assert all(out[k] >= previous[k] for k in KEYS if previous[k] is not None)
        if appended_only and last >= 0:
            totals = calendar_history(scratch, "demo", site.tz, "lifetime", T0 + last * STEP)["totals"]
            assert out[energy_key("grid_import")] == totals["energy_kwh"]["grid_import"]
        previous = out
