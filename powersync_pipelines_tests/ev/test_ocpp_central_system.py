"""The OCPP 1.6J central system against the simulated charge point over a real websocket on loopback."""

from __future__ import annotations

import asyncio
import time

import pandas as pd
import pytest
import websockets
from websockets.asyncio.client import connect

from powersync_pipelines.config import load_sites
from powersync_pipelines.ev import handoff
from powersync_pipelines.ev.ocpp_central import CentralSystem, meter_rows
from powersync_pipelines.sim.ocpp_cp import SimCar, SimulatedChargePoint
from powersync_pipelines.storage import HistoryStore


def wait_until(cond, what: str, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.fixture
def central(tmp_path):
    store = HistoryStore(tmp_path / "ev.duckdb")
    cs = CentralSystem(store, load_sites(), port=0, poll_s=0.1, meter_interval_s=30)
    port = cs.start_in_thread()
    yield store, port
    cs.stop()


@pytest.fixture
def charge_point(central):
    store, port = central
    sim = SimulatedChargePoint(f"ws://127.0.0.1:{port}/demo-cp1", car=SimCar(battery_kwh=60, soc=0.3, max_amps=32),
                               time_scale=60.0, tick_s=0.05)
    sim.start_in_thread()
    wait_until(lambda: sim.state.transaction_id is not None, "the car's transaction")
    yield store, sim
    sim.stop()


def _set(store, limit, unit="A"):
    sid = handoff.request_setpoint(store, "demo", "demo-cp1", limit, unit)
    sp = handoff.wait_for_outcome(store, sid, timeout_s=30, poll_s=0.05)
    assert sp.done, sp
    return sp


def test_boot_status_transaction_and_meter_values_are_stored(charge_point):
    store, sim = charge_point
    cp = store.query("SELECT * FROM ocpp_charge_points")
    assert cp.loc[0, "charge_point_id"] == "demo-cp1" and cp.loc[0, "site_id"] == "demo"
    assert cp.loc[0, "vendor"] == "PowerSync" and bool(cp.loc[0, "connected"])
    wait_until(lambda: len(store.query("SELECT * FROM ocpp_meter_values WHERE measurand = 'SoC'")) >= 2, "meter values")
    statuses = set(store.query("SELECT status FROM ocpp_status")["status"])
    assert {"Preparing", "Charging"} <= statuses
    tx = store.query("SELECT * FROM ocpp_transactions")
    assert tx.loc[0, "status"] == "active" and tx.loc[0, "id_tag"] == "sim-car" and tx.loc[0, "connector_id"] == 1
    m = store.query("SELECT DISTINCT measurand, unit FROM ocpp_meter_values")
    assert dict(zip(m.measurand, m.unit, strict=True))["Power.Active.Import"] == "W"
    assert wait_until(lambda: store.query("SELECT energy_kwh FROM ev_session_energy").iloc[0, 0] > 0, "energy")
    # the central system set the sampling on boot
    assert sim.state.config["MeterValueSampleInterval"] == "30"
    assert "Current.Offered" in sim.state.config["MeterValuesSampledData"]


def test_a_setpoint_reaches_the_car_which_draws_no_more_than_allowed(charge_point):
    store, sim = charge_point
    sp = _set(store, 10)
    assert sp.status == "applied" and sp.sent_value == 10 and sp.reply["composite_limit"] == 10
    mark = len(sim.history)
    wait_until(lambda: len(sim.history) > mark + 20, "the car to charge a while")
    assert all(drawn <= offered <= 10 for _, offered, drawn in sim.history[mark + 1 :])
    assert sim.state.drawn_a == 10 and sim.state.status == "Charging"
    cmd = store.query("SELECT * FROM commands")
    assert cmd.loc[0, "device_kind"] == "ocpp" and cmd.loc[0, "command"] == "set_charging_profile"
    assert cmd.loc[0, "outcome"] == "ok" and '"TxProfile"' in cmd.loc[0, "written"]


def test_a_limit_is_never_above_the_chargers_max_and_never_below_its_min(charge_point):
    store, sim = charge_point
    sp = _set(store, 45)
    assert sp.sent_value == 32 and sp.status == "applied" and "asked 45, sent 32" in sp.outcome
    sp = _set(store, 9000, "W")
    assert sp.sent_value == 7360 and sim.allowed_amps() == pytest.approx(32)
    sp = _set(store, 13.77)  # floored to the schema's 0.1 step, never rounded up
    assert sp.sent_value == 13.7 and sp.status == "applied"
    sp = _set(store, 4)  # between 0 and 6 A: pause instead
    assert sp.sent_value == 0
    wait_until(lambda: sim.state.status == "SuspendedEVSE", "the pause")
    assert sim.state.drawn_a == 0
    assert max(offered for _, offered, _ in sim.history) <= 32


def test_remote_stop_then_a_limit_starts_a_new_transaction_with_the_profile(charge_point):
    store, sim = charge_point
    first = sim.state.transaction_id
    sid = handoff.request_command(store, "demo", "demo-cp1", "stop")
    assert handoff.wait_for_outcome(store, sid, 30, 0.05).status == "accepted"
    wait_until(lambda: sim.state.transaction_id is None, "the stop")
    wait_until(lambda: store.query("SELECT status FROM ocpp_transactions WHERE transaction_id = ?", [first]).iloc[0, 0] == "stopped", "stored stop")
    sp = _set(store, 12)  # car still plugged in (Preparing): RemoteStartTransaction carries the TxProfile
    assert sp.status == "accepted" and "remote_start_with_profile" in sp.outcome
    wait_until(lambda: sim.state.transaction_id not in (None, first), "the new transaction")
    wait_until(lambda: sim.state.drawn_a == 12, "12 A")
    # no transaction and no car: the limit waits as TxDefaultProfile
    sid = handoff.request_command(store, "demo", "demo-cp1", "stop")
    handoff.wait_for_outcome(store, sid, 30, 0.05)
    wait_until(lambda: sim.state.transaction_id is None, "the second stop")
    sim.unplug()
    sp = _set(store, 8)
    assert sp.outcome.startswith("set_charging_profile_default") and sp.status == "applied"


def test_an_expired_setpoint_is_never_sent(central):
    store, port = central
    old = pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=1)
    sid = handoff.request_setpoint(store, "demo", "demo-cp1", 20, now=old)
    sim = SimulatedChargePoint(f"ws://127.0.0.1:{port}/demo-cp1", time_scale=60.0, tick_s=0.05)
    sim.start_in_thread()
    try:
        sp = handoff.wait_for_outcome(store, sid, 30, 0.05)
        assert sp.status == "expired" and sp.sent_value is None
        assert all(p.limit != 20 for p in sim.state.profiles)
    finally:
        sim.stop()


def test_a_newer_request_supersedes_a_pending_one(tmp_path):
    store = HistoryStore(tmp_path / "h.duckdb")
    a = handoff.request_setpoint(store, "demo", "demo-cp1", 10)
    b = handoff.request_setpoint(store, "demo", "demo-cp1", 16)
    assert handoff.setpoint_outcome(store, a).status == "superseded"
    assert [s.setpoint_id for s in handoff.claim_pending(store, "demo-cp1")] == [b]
    with pytest.raises(handoff.SetpointError, match="finite number >= 0"):
        handoff.request_setpoint(store, "demo", "demo-cp1", -1)
    with pytest.raises(handoff.SetpointError, match="A or W"):
        handoff.request_setpoint(store, "demo", "demo-cp1", 10, "kW")


def test_unknown_identity_gets_404_and_a_wrong_subprotocol_is_closed(central):
    _, port = central

    async def probe():
        with pytest.raises(websockets.exceptions.InvalidStatus) as e:
            async with connect(f"ws://127.0.0.1:{port}/nobody", subprotocols=["ocpp1.6"]):
                pass
        assert e.value.response.status_code == 404
        # no subprotocol offered: websockets refuses the handshake (400) before any OCPP is spoken
        with pytest.raises(websockets.exceptions.InvalidStatus) as e:
            async with connect(f"ws://127.0.0.1:{port}/demo-cp1"):
                pass
        assert e.value.response.status_code == 400
        # a different subprotocol offered: refused the same way
        with pytest.raises(websockets.exceptions.InvalidStatus):
            async with connect(f"ws://127.0.0.1:{port}/demo-cp1", subprotocols=["ocpp2.0.1"]):
                pass

    asyncio.run(probe())


def test_meter_values_are_parsed_scaled_and_bad_samples_skipped():
    rows = meter_rows("cp", 1, 7, [{"timestamp": "2024-02-12T08:00:00Z", "sampled_value": [
        {"value": "12.5", "measurand": "Energy.Active.Import.Register", "unit": "kWh"},
        {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW", "phase": "L1"},
        {"value": "1234"},  # defaults: energy register in Wh
        {"value": "n/a", "measurand": "SoC", "unit": "Percent"},
    ]}])
    assert [(r["measurand"], r["unit"], r["value"], r["phase"]) for r in rows] == [
        ("Energy.Active.Import.Register", "Wh", 12500.0, ""), ("Power.Active.Import", "W", 7200.0, "L1"),
        ("Energy.Active.Import.Register", "Wh", 1234.0, "")]
    assert rows[0]["ts"] == pd.Timestamp("2024-02-12T08:00:00Z") and rows[0]["transaction_id"] == 7


def test_the_ocpp_charger_interface_drives_the_charge_point_through_the_hand_off(charge_point):
    from powersync_pipelines.ev.chargers import open_charger

    store, sim = charge_point
    ch = open_charger(load_sites().get("demo").ev, "demo", store)
    r = ch.set_current_limit(18.6)
    assert r.ok and r.readback["status"] == "applied" and sim.allowed_amps() == 18
    wait_until(lambda: len(store.query("SELECT * FROM ocpp_meter_values WHERE measurand = 'Current.Offered' AND value = 18")), "18 A metered")
    st = ch.read_status()
    assert st.car_connected and st.charging and st.state == "Charging" and st.session_energy_kwh > 0
    assert ch.set_power(2.0).ok and sim.allowed_amps() == pytest.approx(2000 / 230)  # W profile, 8.7 A
    r = ch.stop()
    assert r.ok
    wait_until(lambda: sim.state.transaction_id is None, "the stop")


def test_a_restarted_central_system_binds_profiles_to_the_running_transaction(tmp_path):
    store = HistoryStore(tmp_path / "r.duckdb")
    cs = CentralSystem(store, load_sites(), port=0, poll_s=0.1, meter_interval_s=30)
    port = cs.start_in_thread()
    sim = SimulatedChargePoint(f"ws://127.0.0.1:{port}/demo-cp1", time_scale=60.0, tick_s=0.05)
    sim.start_in_thread()
    try:
        wait_until(lambda: sim.state.transaction_id is not None, "the transaction")
        tx = sim.state.transaction_id
        cs.stop()  # the charge point reconnects (backoff from 1 s) to a new central system on the same port
        cs = CentralSystem(store, load_sites(), port=port, poll_s=0.1, meter_interval_s=30)
        cs.start_in_thread()
        wait_until(lambda: "demo-cp1" in cs.links, "the reconnect")
        sp = _set(store, 11)
        assert sp.status == "applied" and "set_charging_profile:" in sp.outcome  # TxProfile, no new RemoteStart
        assert sim.state.transaction_id == tx and sim.allowed_amps() == 11
    finally:
        sim.stop()
        cs.stop()


def test_a_site_with_rate_unit_w_gets_power_profiles(charge_point):
    from powersync_pipelines.ev.chargers import open_charger

    store, sim = charge_point
    cfg = load_sites().get("demo").ev.model_copy(update={"rate_unit": "W"})
    r = open_charger(cfg, "demo", store).set_current_limit(32)
    assert r.ok
    sp = store.query("SELECT unit, sent_value, status FROM ev_setpoints ORDER BY requested_at DESC LIMIT 1").iloc[0]
    assert (sp["unit"], sp["sent_value"], sp["status"]) == ("W", 7360.0, "applied")  # 32 A x 230 V
    assert sim.state.profiles[-1].unit == "W" and sim.allowed_amps() == pytest.approx(32)
