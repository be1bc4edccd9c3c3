"""The restore watch reads the control ledger: a lapsed lease puts the saved state back (also after a crash), a
failed restore is retried on every pass, and a live holder is never overridden."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pandas as pd

from powersync_pipelines.control import ledger
from powersync_pipelines.control.clock import Clock
from powersync_pipelines.control.context import ControlContext
from powersync_pipelines.control.restore import due, settle
from powersync_pipelines.control.services import run_service
from powersync_pipelines.devices import open_device
from powersync_pipelines.devices.maps import SG
from powersync_pipelines.storage import HistoryStore


def later(store: HistoryStore, minutes: float) -> ControlContext:
    """The same store, on a clock ``minutes`` ahead of now."""
    at = pd.Timestamp.now(tz="UTC") + pd.Timedelta(minutes=minutes)
    return ControlContext(store, Clock(wall=lambda: at))


def test_a_lapsed_manual_force_is_put_back_once(sungrow_sim, sungrow_site, store, ctx):
    assert run_service("force_charge", sungrow_site, {"duration_minutes": 15, "kw": 2.0}, ctx)["ok"]
    assert settle(ctx, sungrow_site) == [] and due(ctx) == []  # not due yet
    ahead = later(store, 16)
    assert due(ahead) == [sungrow_site.id]
    (out,) = settle(ahead, sungrow_site)
    assert out.ok and out.request.owner == "safety" and sungrow_sim.state["ems_mode"] == 0
    assert settle(ahead, sungrow_site) == []
    holds = ledger.holds(store, sungrow_site.id)
    assert holds.loc[holds["owner"] == "manual", "status"].tolist() == ["lapsed"]
    owners = store.query("SELECT command, owner FROM commands ORDER BY issued_at")
    assert owners.to_dict("records") == [{"command": "force_charge", "owner": "manual"},
                                         {"command": "restore_normal", "owner": "safety"}]


def test_a_failed_restore_stays_pending_and_is_retried(sungrow_sim, sungrow_site, store, ctx):
    assert run_service("force_charge", sungrow_site, {"duration_minutes": 15, "kw": 2.0}, ctx)["ok"]
    ahead = later(store, 20)
    sungrow_sim.inject("exception", code=4, address=SG.COMMAND, on="write", count=-1)
    (first,) = settle(ahead, sungrow_site)
    assert not first.ok
    assert store.query("SELECT status FROM device_saved_state")["status"].tolist() == ["restore_failed"]
    assert due(ahead) == [sungrow_site.id]  # the watch comes back for it
    sungrow_sim.clear_faults()
    (second,) = settle(ahead, sungrow_site)
    assert second.ok and sungrow_sim.state["ems_mode"] == 0


def test_the_restore_never_overrides_a_live_holder(sungrow_sim, sungrow_site, store, ctx):
    assert run_service("force_charge", sungrow_site, {"duration_minutes": 15, "kw": 2.0}, ctx)["ok"]
    ahead = later(store, 16)
    # before the watch gets to it, the owner forces again: the new hold is live, nothing is restored
    assert run_service("force_discharge", sungrow_site, {"duration_minutes": 60, "kw": 1.0}, ahead)["ok"]
    assert settle(ahead, sungrow_site) == []
    assert sungrow_sim.state["command"] == SG.CMD_DISCHARGE


def test_a_killed_process_leaves_a_lease_the_restore_watch_settles_after_restart(sungrow_sim, sungrow_site, tmp_path):
    db = tmp_path / "kill.duckdb"
    script = textwrap.dedent(f"""
        import time
        from powersync_pipelines.config import parse_sites
        from powersync_pipelines.control.context import ControlContext
        from powersync_pipelines.control.services import run_service
        from powersync_pipelines.storage import HistoryStore
        doc = {{"sites": [{{"id": "t1", "timezone": "Australia/Melbourne",
                "provider": {{"kind": "aemo", "region": "VIC1"}},
                "battery": {{"kind": "sungrow_sh", "host": "127.0.0.1", "port": {sungrow_sim.port},
                            "capacity_kwh": 13.5, "max_charge_kw": 5, "max_discharge_kw": 5}}}}]}}
        site = parse_sites(doc).sites[0]
        out = run_service("force_discharge", site, {{"duration_minutes": 15, "kw": 3.0}},
                          ControlContext(HistoryStore({str(db)!r})))
        assert out["ok"], out
        print("forced", flush=True)
        time.sleep(60)
    """)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "forced"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert sungrow_sim.state["command"] == SG.CMD_DISCHARGE  # the battery is still forced after the crash
    store = HistoryStore(db)  # "restart"
    (out,) = settle(later(store, 15.5), sungrow_site)
    assert out.ok
    assert (sungrow_sim.state["ems_mode"], sungrow_sim.state["command"]) == (0, SG.CMD_STOP)


def test_a_tesla_spike_tariff_is_saved_first_and_restored_at_expiry(tesla_sim, tesla_site, store, ctx):
    from powersync_pipelines.control.arbiter import Request
    from powersync_pipelines.devices.tesla_tariff import window_tariff

    now = pd.Timestamp.now(tz="UTC")
    spike = window_tariff(now, now + pd.Timedelta(hours=2), "Australia/Melbourne", buy_in=5.0, sell_in=9.0,
                          buy_out=5.0, sell_out=0.08, code="AEMO-SPIKE")
    lease = now + pd.Timedelta(minutes=30)
    with ctx.battery(tesla_site) as dev:
        out = ctx.arbiter.act(Request(tesla_site.id, "battery", "spike", "spike_tariff", "test spike", lease_until=lease),
                              lambda: dev.apply_spike_tariff({"tariff_content_v2": spike}, lease))
        assert out.ok, out.describe()
        assert dev.saved_state().state["tariff"]["code"] == "USER_TARIFF"
    assert (tesla_sim.state["tariff_code"], tesla_sim.state["default_real_mode"]) == ("AEMO-SPIKE", "autonomous")
    (back,) = settle(later(store, 31), tesla_site)
    assert back.ok
    assert (tesla_sim.state["tariff_code"], tesla_sim.state["default_real_mode"]) == ("USER_TARIFF", "self_consumption")


def test_an_unarbitrated_write_to_a_live_device_is_refused(sungrow_sim, sungrow_site, store):
    with open_device(sungrow_site, store, arbitrated=True) as dev:
        r = dev.force_charge(30, 2.0)
    assert r.outcome == "refused" and "no grant from the arbiter" in r.error
    assert sungrow_sim.written_addresses(accepted_only=False) == []
