"""The EV charger as a device with owners, end to end: the planning cycle (``sync_now``) sets the car's current
through the arbiter as ``ev`` over a real OCPP websocket to the simulated charge point, a person's stop or start
holds the charger as ``manual`` against the next cycles until its lease ends, and a charger write without the
arbiter's grant is refused by the driver. The battery is a simulated Sungrow SH on loopback; everything is in
one real DuckDB file."""

from __future__ import annotations

import json

import pytest

from powersync_pipelines.cli import main as cli_main
from powersync_pipelines.config import load_sites
from powersync_pipelines.control import ledger
from powersync_pipelines.control.context import ControlContext
from powersync_pipelines.control.services import ServiceInputError, run_service
from powersync_pipelines.control.status import site_status
from powersync_pipelines.ev.ocpp_central import CentralSystem
from powersync_pipelines.sim.ocpp_cp import SimCar, SimulatedChargePoint
from powersync_pipelines.sim.sungrow_sh import SungrowSimulator
from powersync_pipelines.storage import HistoryStore

from ..conftest import lapse_holds
from .test_ocpp_central_system import wait_until

NOW = "2024-02-12T20:00:00Z"  # the demo's replay start: the battery plan exports, nothing charges it


@pytest.fixture
def live(tmp_path, demo_site):
    battery = SungrowSimulator(port=0, capacity_kwh=13.5, soc=0.5, max_charge_kw=5.0, max_discharge_kw=5.0)
    battery.start()
    site = demo_site.model_copy(update={"battery": demo_site.battery.model_copy(update={"port": battery.port})})
    store = HistoryStore(tmp_path / "ev.duckdb")
    cs = CentralSystem(store, load_sites(), port=0, poll_s=0.1, meter_interval_s=30)
    port = cs.start_in_thread()
    cp = SimulatedChargePoint(f"ws://127.0.0.1:{port}/demo-cp1", car=SimCar(60, 0.3, 32), time_scale=60, tick_s=0.05)
    cp.start_in_thread()
    wait_until(lambda: cp.state.transaction_id is not None, "the transaction")
    yield site, ControlContext(store), cp
    cp.stop()
    cs.stop()
    battery.stop()


def _limits(store: HistoryStore) -> list[tuple[str, float | None, str]]:
    df = store.query("SELECT command, sent_value, requested_by FROM ev_setpoints ORDER BY requested_at")
    return list(df.itertuples(index=False, name=None))


def test_the_plan_sets_the_cars_current_and_a_manual_stop_holds_until_its_lease_ends(live):
    site, ctx, cp = live
    store = ctx.store
    assert run_service("ev_set_mode", site, {"mode": "time_critical", "target_kwh": 30}, ctx)["ok"]

    out = run_service("sync_now", site, {"now": NOW}, ctx)
    ev = out["ev"]
    assert out["command"] == "ok" and ev["command"]["ok"], ev  # the battery step first, then the car
    assert ev["amps"] == 32 and ev["session"]["mode"] == "time_critical"
    assert ev["command"]["arbiter"]["owner"] == "ev" and ev["command"]["arbiter"]["decision"] == "granted"
    wait_until(lambda: cp.state.drawn_a == 32, "32 A drawn")
    assert ledger.holder(store, site.id, "ev_charger", ctx.clock.wall()).owner == "ev"
    sent = store.query("SELECT owner, outcome FROM commands WHERE device_kind = 'ocpp' ORDER BY issued_at").iloc[-1]
    assert (sent["owner"], sent["outcome"]) == ("ev", "ok")  # the central system records whom it wrote for

    stopped = run_service("ev_stop_session", site, {"duration_minutes": 60}, ctx)
    assert stopped["ok"] and stopped["owner"] == "manual" and stopped["decision"] == "granted", stopped
    wait_until(lambda: cp.state.transaction_id is None, "the transaction to stop")
    n_setpoints = len(_limits(store))

    again = run_service("sync_now", site, {"now": NOW}, ctx)["ev"]
    assert again["amps"] == 32 and again["command"]["outcome"] == "yielded", again  # the plan still wants 32 A
    assert again["command"]["arbiter"]["holder"] == "manual"
    assert len(_limits(store)) == n_setpoints and cp.state.transaction_id is None  # nothing reached the charger
    status = site_status(ctx, site)["ev"]
    assert status["holder"] == "manual" and status["held_by_command"] == "stop" and status["held_until"]
    req = ledger.requests(store, site.id)
    yielded = req[(req["control"] == "ev_charger") & (req["decision"] == "yielded")].iloc[0]
    assert (yielded["owner"], yielded["holder"], yielded["holder_command"]) == ("ev", "manual", "stop")

    lapse_holds(store, site.id)  # the person's hour is over: the next cycle starts the car again
    resumed = run_service("sync_now", site, {"now": NOW}, ctx)["ev"]
    assert resumed["command"]["ok"] and resumed["command"]["arbiter"]["decision"] == "granted", resumed
    wait_until(lambda: cp.state.transaction_id is not None and cp.state.drawn_a == 32, "charging again at 32 A")
    assert [c for c, _, _ in _limits(store)][-2:] == ["start", "limit"]


def test_a_manual_start_at_ten_amps_is_not_raised_by_time_critical(live):
    site, ctx, cp = live
    run_service("ev_set_mode", site, {"mode": "time_critical"}, ctx)
    started = run_service("ev_start_session", site, {"amps": 10}, ctx)
    assert started["ok"] and started["charger"] == "ev_ocpp", started
    wait_until(lambda: cp.state.drawn_a == 10, "10 A drawn")
    ev = run_service("sync_now", site, {"now": NOW}, ctx)["ev"]
    assert ev["command"]["outcome"] == "yielded" and ev["command"]["arbiter"]["holder"] == "manual"
    assert cp.state.offered_a == 10
    assert _limits(ctx.store)[-1] == ("limit", 10.0, "manual")


def test_a_charger_write_without_the_arbiters_grant_is_refused(tmp_path, demo_site):
    store = HistoryStore(tmp_path / "g.duckdb")
    ctx = ControlContext(store)
    with ctx.charger(demo_site) as charger:
        for result in (charger.set_current_limit(16), charger.start(), charger.stop()):
            assert result.outcome == "refused" and "no grant from the arbiter" in result.error
    assert store.query("SELECT count(*) FROM ev_setpoints").iloc[0, 0] == 0  # nothing was handed to the charger


def test_ev_services_check_their_input_and_ev_status_names_the_holder(tmp_path, demo_site, monkeypatch, capsys):
    ctx = ControlContext(HistoryStore(tmp_path / "s.duckdb"))
    with pytest.raises(ServiceInputError, match="--mode must be one of solar_only"):
        run_service("ev_set_mode", demo_site, {"mode": "fast"}, ctx)
    with pytest.raises(ServiceInputError, match="departure"):
        run_service("ev_set_mode", demo_site, {"mode": "solar_only", "departure": "25:00"}, ctx)
    with pytest.raises(ServiceInputError, match="--amps must be > 0"):
        run_service("ev_start_session", demo_site, {"amps": 0}, ctx)
    no_car = demo_site.model_copy(update={"ev": None})
    with pytest.raises(ServiceInputError, match="has no ev section"):
        run_service("ev_stop_session", no_car, {}, ctx)
    set_ = run_service("ev_set_mode", demo_site, {"mode": "solar_preferred", "departure": "06:45",
                                                  "target_kwh": "18"}, ctx)
    assert set_["settings"] == {"mode": "solar_preferred", "departure": "06:45", "target_kwh": 18.0,
                                "source": "stored"}
    status = run_service("ev_status", demo_site, {}, ctx)
    assert status["mode"] == "solar_preferred" and status["holder"] == "none" and status["session"] is None
    assert set(status) >= {"chargers", "session", "mode", "current_limit", "energy_delivered_kwh"}

    monkeypatch.setenv("POWERSYNC_DUCKDB", str(tmp_path / "cli.duckdb"))
    assert cli_main(["service", "ev_set_mode", "--site-id", "demo", "--mode", "time_critical", "--departure",
                     "07:00", "--target-kwh", "25"]) == 0
    capsys.readouterr()
    assert cli_main(["service", "ev_status", "--site-id", "demo"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["mode"], shown["departure"], shown["target_kwh"]) == ("time_critical", "07:00", 25.0)
