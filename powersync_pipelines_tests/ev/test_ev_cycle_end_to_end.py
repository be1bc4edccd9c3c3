"""The demo site's car planned and driven end to end: settings, the cycle, the central system and the simulated
charge point over a real websocket; and the ``ev_status`` JSON."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.config import load_sites
from powersync_pipelines.ev.chargers import open_charger
from powersync_pipelines.ev.cycle import SiteReadings, ev_cycle
from powersync_pipelines.ev.ocpp_central import CentralSystem
from powersync_pipelines.ev.state import EvSettingsError, ev_status, load_settings, save_settings
from powersync_pipelines.optimizer import BatteryParams, OptimizationProblem
from powersync_pipelines.sim.ocpp_cp import SimCar, SimulatedChargePoint
from powersync_pipelines.storage import HistoryStore

from .test_ocpp_central_system import wait_until

SITE = load_sites().get("demo")


def _problem(now: pd.Timestamp, dear: float = 0.30) -> OptimizationProblem:
    """Cheap (0.08) from 6 to 10 h ahead, ``dear`` otherwise."""
    start = now.floor("5min")
    k = np.arange(288)
    price = np.where((k >= 72) & (k < 120), 0.08, dear)
    return OptimizationProblem(start, price, price - 0.2, np.zeros(288), np.full(288, 0.8),
                               BatteryParams(13.5, 0.5, 5.0, 5.0), export_limit_kw=5.0, import_limit_kw=15.0)


@pytest.fixture
def live(tmp_path):
    store = HistoryStore(tmp_path / "ev.duckdb")
    cs = CentralSystem(store, load_sites(), port=0, poll_s=0.1, meter_interval_s=30)
    port = cs.start_in_thread()
    sim = SimulatedChargePoint(f"ws://127.0.0.1:{port}/demo-cp1", car=SimCar(60, 0.3, 32), time_scale=60, tick_s=0.05)
    sim.start_in_thread()
    wait_until(lambda: sim.state.transaction_id is not None, "the transaction")
    charger = open_charger(SITE.ev, "demo", store)
    yield store, sim, charger
    sim.stop()
    cs.stop()


def test_time_critical_sends_the_chargers_max_and_the_car_draws_it(live):
    store, sim, charger = live
    save_settings(store, "demo", "time_critical", departure="07:30", target_kwh=30)
    now = pd.Timestamp.now(tz="UTC")
    res = ev_cycle(SITE, _problem(now), charger, store, now)
    assert res.command is not None and res.command.ok, res.to_dict()
    assert res.decision.amps == 32 and res.session.mode == "time_critical"
    sp = store.query("SELECT sent_value, unit, status FROM ev_setpoints ORDER BY requested_at DESC LIMIT 1").iloc[0]
    assert (sp["sent_value"], sp["unit"], sp["status"]) == (32.0, "A", "applied")
    wait_until(lambda: sim.state.drawn_a == 32, "32 A drawn")
    status = ev_status(store, SITE)
    assert status["mode"] == "time_critical" and status["chargers"][0]["connected"] is True
    assert status["current_limit"]["value"] == 32 and status["current_limit"]["status"] == "applied"
    assert status["session"]["transaction_id"] == sim.state.transaction_id
    assert set(status) >= {"chargers", "session", "mode", "current_limit", "energy_delivered_kwh"}


def test_cost_optimized_waits_for_the_cheap_night_and_the_house_limits_the_car(live):
    store, sim, charger = live
    now = pd.Timestamp.now(tz="UTC")
    leave = (now + pd.Timedelta(hours=11)).tz_convert(SITE.timezone).strftime("%H:%M")
    save_settings(store, "demo", "cost_optimized", departure=leave, target_kwh=20)
    res = ev_cycle(SITE, _problem(now, dear=0.60), charger, store, now)
    assert res.command.ok and res.plan is not None and res.plan.target_met
    assert res.decision.amps == 0  # dear now, cheap 6-10 h ahead and before departure: wait
    wait_until(lambda: sim.state.status == "SuspendedEVSE", "the pause")
    cheap = (np.arange(288) >= 72) & (np.arange(288) < 120)
    assert res.plan.ev_kw[~cheap].sum() == 0 and res.plan.ev_kw[cheap].sum() > 0
    # time critical with a busy house: 15 kW connection - 12 kW house - 1 kW battery charging = 2 kW -> 8 A
    save_settings(store, "demo", "time_critical")
    res = ev_cycle(SITE, _problem(now), charger, store, now, readings=SiteReadings(12.0, 0.0, 1.0))
    assert res.decision.amps == 8 and res.command.ok
    wait_until(lambda: sim.state.drawn_a == 8, "8 A drawn")


def test_settings_persist_and_bad_ones_are_refused(tmp_path):
    store = HistoryStore(tmp_path / "s.duckdb")
    assert load_settings(store, "demo", SITE.ev).source == "default"
    assert load_settings(store, "demo", SITE.ev).target_kwh == 20
    save_settings(store, "demo", "solar_only", departure="08:15")
    s = load_settings(store, "demo", SITE.ev)
    assert (s.mode, s.departure, s.target_kwh, s.source) == ("solar_only", "08:15", 20, "stored")
    save_settings(store, "demo", "time_critical", target_kwh=12.5)
    assert load_settings(store, "demo", SITE.ev).departure == "08:15"  # kept
    with pytest.raises(EvSettingsError, match="mode must be one of"):
        save_settings(store, "demo", "fast")
    with pytest.raises(EvSettingsError, match="HH:MM"):
        save_settings(store, "demo", "solar_only", departure="25:00")
    with pytest.raises(EvSettingsError, match="target_kwh"):
        save_settings(store, "demo", "solar_only", target_kwh=-3)


def test_no_car_means_nothing_is_sent(live):
    store, sim, charger = live
    sim.unplug()
    wait_until(lambda: store.query("SELECT status FROM ocpp_connector_status").iloc[0, 0] == "Available", "Available")
    now = pd.Timestamp.now(tz="UTC")
    before = len(store.query("SELECT * FROM ev_setpoints"))
    res = ev_cycle(SITE, _problem(now), charger, store, now)
    assert res.note == "no car connected" and res.command is None
    assert len(store.query("SELECT * FROM ev_setpoints")) == before
