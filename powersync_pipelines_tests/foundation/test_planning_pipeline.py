"""The whole planning loop in a real Dagster run: replayed AEMO prices -> highspy plan -> Modbus writes to
a simulated Sungrow SH on a free loopback port -> read back -> DuckDB, and a second run updates in place."""

from __future__ import annotations

import socket

import dagster as dg
import pandas as pd
import pytest

from powersync_pipelines.commands.demo import _commands_failed as demo_failed_commands
from powersync_pipelines.control.clock import Clock
from powersync_pipelines.control.context import ControlContext
from powersync_pipelines.defs.planning.assets import COMMANDS_CHECK, PLANNING_ASSETS
from powersync_pipelines.defs.planning.partitions import all_sites_tags
from powersync_pipelines.defs.resources import (
    BatteryFleetResource,
    ClockResource,
    HistoryStoreResource,
    SitesResource,
)
from powersync_pipelines.optimizer import PlannerSettings
from powersync_pipelines.optimizer.feasibility import plan_violations
from powersync_pipelines.sim.sungrow_sh import SungrowSimulator
from powersync_pipelines.storage import HistoryStore

NOW = "2024-02-12T20:00:00+00:00"  # 07:00 AEDT 13 Feb 2024; the $16,600/MWh spike starts 03:20 UTC


@pytest.fixture
def simulator(demo_site):
    b = demo_site.battery
    sim = SungrowSimulator(host="127.0.0.1", port=0, capacity_kwh=b.capacity_kwh, soc=0.5,
                           max_charge_kw=b.max_charge_kw, max_discharge_kw=b.max_discharge_kw)
    sim.start()
    yield sim
    sim.stop()


def _materialize(tmp_path, simulator, instance, now: str = NOW) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        PLANNING_ASSETS,
        instance=instance,
        tags=all_sites_tags(),
        resources={
            "sites": SitesResource(),
            "history": HistoryStoreResource(path=str(tmp_path / "h.duckdb")),
            "fleet": BatteryFleetResource(endpoints={"demo": f"127.0.0.1:{simulator.port}"}),
            "clock": ClockResource(fixed_now=now),
        },
    )


def test_one_run_plans_pushes_reads_back_and_stores(tmp_path, simulator, demo_site):
    instance = dg.DagsterInstance.ephemeral()
    result = _materialize(tmp_path, simulator, instance)
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"price_frame_valid": True, "plan_feasible": True, "commands_carried_out": True}

    store = HistoryStore(tmp_path / "h.duckdb")
    meta, plan = store.read_latest_plan("demo")
    assert meta["plan_id"] == "demo:20240212T2000Z"
    assert len(plan) == 576 and plan.index[0] == pd.Timestamp(NOW)
    assert plan_violations(plan, PlannerSettings.from_site(demo_site), meta["soc_initial"]) == []
    assert meta["cost"] < meta["baseline_cost"]  # the spike alone makes a battery worth having
    # the plan exports into the 13 Feb spike (03:20-04:00 UTC) and stores energy before it
    spike = plan.loc["2024-02-13T03:20Z":"2024-02-13T03:55Z"]
    assert (spike["action"] == "EXPORT").all()
    assert plan.loc[pd.Timestamp("2024-02-13T03:15Z"), "soc"] > 0.8

    # the first slot's action was written over Modbus and verified by read-back
    cmd = store.query("SELECT * FROM commands WHERE site_id = 'demo'")
    assert len(cmd) >= 1 and set(cmd["outcome"]) == {"ok"}
    first = plan.iloc[0]
    assert cmd["command"].iloc[-1].startswith(f"apply:{first['action']}")
    holding = simulator.holding[1]  # pymodbus addresses = Sungrow document numbers - 1
    if first["action"] == "SELF_CONSUMPTION":
        assert holding[13049] == 0
    else:
        assert holding[13049] == 2  # EMS mode: forced
        assert holding[13050] == {"CHARGE": 0xAA, "EXPORT": 0xBB, "IDLE": 0xCC}[first["action"]]
        if first["action"] != "IDLE":
            kw = max(first["battery_charge_kw"], first["battery_discharge_kw"])
            assert holding[13051] == pytest.approx(kw * 1000, abs=1)

    tel = store.query("SELECT * FROM telemetry WHERE site_id = 'demo'")
    assert len(tel) >= 1 and 0 <= tel["soc"].iloc[-1] <= 1
    assert store.query("SELECT count(*) n FROM prices")["n"].iloc[0] >= 576
    assert set(store.query("SELECT DISTINCT kind FROM forecasts")["kind"]) == {"solar", "load"}
    assert store.query("SELECT count(*) n FROM tariff_payloads")["n"].iloc[0] == 1


def test_a_second_run_updates_rows_instead_of_duplicating(tmp_path, simulator):
    instance = dg.DagsterInstance.ephemeral()
    assert _materialize(tmp_path, simulator, instance).success
    store = HistoryStore(tmp_path / "h.duckdb")
    counts = {t: store.query(f"SELECT count(*) n FROM {t}")["n"].iloc[0]
              for t in ("prices", "forecasts", "plans", "schedule")}
    assert _materialize(tmp_path, simulator, instance).success
    again = {t: store.query(f"SELECT count(*) n FROM {t}")["n"].iloc[0] for t in counts}
    assert again == counts
    # a run five minutes later adds one plan and extends the price history by one interval
    later = (pd.Timestamp(NOW) + pd.Timedelta(minutes=5)).isoformat()
    assert _materialize(tmp_path, simulator, instance, later).success
    assert store.query("SELECT count(*) n FROM plans")["n"].iloc[0] == counts["plans"] + 1
    assert store.query("SELECT count(*) n FROM prices")["n"].iloc[0] == counts["prices"] + 1


def test_unreachable_battery_fails_the_command_visibly_but_keeps_the_plan(tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    result = dg.materialize(
        PLANNING_ASSETS, instance=instance, tags=all_sites_tags(), raise_on_error=False,
        resources={
            "sites": SitesResource(),
            "history": HistoryStoreResource(path=str(tmp_path / "h.duckdb")),
            "fleet": BatteryFleetResource(endpoints={"demo": f"127.0.0.1:{dead_port}"}),
            "clock": ClockResource(fixed_now=NOW),
        },
    )
    # loud: the commands check fails with the site's error, and `powersync demo` exits 1 with that line
    (check,) = [e for e in result.get_asset_check_evaluations() if e.check_name == COMMANDS_CHECK]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert "demo: " in check.metadata["summary"].value
    (line,) = demo_failed_commands(result)
    assert line.startswith("battery_commands check commands_carried_out: battery command failed: demo: ")
    store = HistoryStore(tmp_path / "h.duckdb")
    assert store.read_latest_plan("demo") is not None  # the plan is stored from the configured SOC
    cmd = store.query("SELECT command, outcome, error FROM commands")
    assert len(cmd) >= 1 and "ok" not in set(cmd["outcome"])
    assert "cannot connect" in " ".join(cmd["error"].dropna())
    # the site is skipped downstream for this slot (not read back a second time), named in telemetry's metadata
    assert store.query("SELECT count(*) n FROM telemetry")["n"].iloc[0] == 0
    tel = result.asset_materializations_for_node("telemetry")[0].metadata
    assert [f["site_id"] for f in tel["stage_failures"].value] == ["demo"]
    assert "its battery command failed this slot" in tel["stage_failures"].value[0]["error"]


def test_sync_now_service_runs_one_cycle_outside_dagster(tmp_path, simulator, demo_site):
    from powersync_pipelines.control.services import run_service

    site = demo_site.model_copy(update={"battery": demo_site.battery.model_copy(update={"port": simulator.port})})
    store = HistoryStore(tmp_path / "h.duckdb")
    out = run_service("sync_now", site, {"now": NOW}, ControlContext(store))
    assert out["ok"], out
    assert out["plan_id"] == "demo:20240212T2000Z" and out["command"] == "ok"
    meta, plan = store.read_latest_plan("demo")
    assert meta["soc_initial"] == pytest.approx(0.5, abs=0.01)  # read from the simulator, not configured
    assert store.query("SELECT count(*) n FROM telemetry")["n"].iloc[0] == 2  # before and after the command


def test_commands_are_skipped_while_the_spike_watch_holds_the_battery(tmp_path, simulator, demo_site):
    from powersync_pipelines.control.spike_watch import run_spike_watch

    site = demo_site.model_copy(update={"battery": demo_site.battery.model_copy(update={"port": simulator.port})})
    store = HistoryStore(tmp_path / "h.duckdb")
    # the replayed $16,600/MWh interval of 13 Feb 2024: the watch force-discharges the battery
    ctx = ControlContext(store, Clock(fixed="2024-02-13T03:30:00Z"))
    report = run_spike_watch([site], ctx, notify=False)
    assert [r.error for r in report.results] == [None]
    assert simulator.holding[1][13050] == 0xBB
    before = store.query("SELECT count(*) n FROM commands")["n"].iloc[0]
    result = _materialize(tmp_path, simulator, dg.DagsterInstance.ephemeral(), "2024-02-13T03:30:00+00:00")
    assert result.success
    mat = result.asset_materializations_for_node("battery_commands")[0]
    assert "yielded to spike (force_discharge)" in mat.metadata["demo/decision"].value
    assert mat.metadata["demo/holder"].value.startswith("spike")
    assert store.query("SELECT count(*) n FROM commands")["n"].iloc[0] == before  # the plan pushed nothing
    yielded = store.query("SELECT owner, decision, holder FROM control_requests WHERE owner = 'optimizer'")
    assert yielded.to_dict("records") == [{"owner": "optimizer", "decision": "yielded", "holder": "spike"}]
    assert simulator.holding[1][13050] == 0xBB  # still discharging for the spike
