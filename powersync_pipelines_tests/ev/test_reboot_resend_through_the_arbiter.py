"""A rebooted charge point gets its last limit back only through the arbiter: re-sent as the owner that still
holds the charger (under that hold's own lease), refused when the lease lapsed or another owner holds it.

Real websocket: the central system (with ``control.ev.arbitrated_resend``, as ``powersync ocpp serve`` wires it)
and the simulated charge point, which forgets its profiles on a soft reset; one real DuckDB file."""

from __future__ import annotations

import pandas as pd
import pytest

from powersync_pipelines.config import load_sites
from powersync_pipelines.control import ledger
from powersync_pipelines.control.context import ControlContext
from powersync_pipelines.control.ev import arbitrated_resend
from powersync_pipelines.control.services import run_service
from powersync_pipelines.ev.ocpp_central import CentralSystem
from powersync_pipelines.sim.ocpp_cp import SimCar, SimulatedChargePoint
from powersync_pipelines.storage import HistoryStore

from ..conftest import lapse_holds
from .test_ocpp_central_system import wait_until


@pytest.fixture
def charger(tmp_path, demo_site):
    store = HistoryStore(tmp_path / "reboot.duckdb")
    sites = load_sites()
    cs = CentralSystem(store, sites, port=0, poll_s=0.1, meter_interval_s=30, resend=arbitrated_resend(store, sites))
    port = cs.start_in_thread()
    cp = SimulatedChargePoint(f"ws://127.0.0.1:{port}/demo-cp1", car=SimCar(60, 0.3, 32), time_scale=60, tick_s=0.05)
    cp.start_in_thread()
    wait_until(lambda: cp.state.transaction_id is not None, "the transaction")
    yield demo_site, ControlContext(store), cp
    cp.stop()
    cs.stop()


def _resends(store: HistoryStore) -> pd.DataFrame:
    return store.query("SELECT owner, command, decision, holder FROM control_requests "
                       "WHERE command = 'resend_limit' ORDER BY requested_at")


def _refusals(store: HistoryStore) -> list[str]:
    df = store.query("SELECT error FROM commands WHERE command = 'resend_limit' AND outcome = 'refused' ORDER BY issued_at")
    return list(df["error"])


def _reboot(cp: SimulatedChargePoint) -> int:
    """Soft-reset the charge point; returns the transaction it had, once it is back with a new one."""
    old = cp.state.transaction_id
    cp.reboot()
    wait_until(lambda: cp.booted.is_set() and cp.state.transaction_id not in (None, old), "the reboot")
    return old


def test_the_holders_limit_is_re_sent_under_its_own_lease_after_a_reboot(charger):
    site, ctx, cp = charger
    store = ctx.store
    started = run_service("ev_start_session", site, {"amps": 10, "duration_minutes": 60}, ctx)
    assert started["ok"], started
    wait_until(lambda: cp.state.drawn_a == 10, "10 A drawn")
    held = ledger.holder(store, site.id, "ev_charger", ctx.clock.wall())
    assert held.owner == "manual"

    _reboot(cp)
    wait_until(lambda: cp.allowed_amps() == 10 and cp.state.drawn_a == 10, "10 A again after the reboot")
    resent = _resends(store)
    assert resent.to_dict("records") == [{"owner": "manual", "command": "resend_limit", "decision": "granted",
                                          "holder": "manual"}]
    after = ledger.holder(store, site.id, "ev_charger", ctx.clock.wall())
    assert after.owner == "manual" and after.lease_until == held.lease_until  # the re-send did not extend it
    last = store.query("SELECT requested_by, limit_value, status FROM ev_setpoints ORDER BY requested_at DESC LIMIT 1")
    assert (last.iloc[0]["requested_by"], last.iloc[0]["limit_value"]) == ("manual", 10.0)
    # a TxProfile on the new transaction (read back), or the RemoteStart carrying it when it came first
    assert last.iloc[0]["status"] in ("applied", "accepted")
    assert _refusals(store) == []


def test_a_reboot_after_the_lease_lapsed_or_under_another_holder_re_sends_nothing(charger):
    site, ctx, cp = charger
    store = ctx.store
    assert run_service("ev_start_session", site, {"amps": 10, "duration_minutes": 60}, ctx)["ok"]
    wait_until(lambda: cp.state.drawn_a == 10, "10 A drawn")
    n_setpoints = store.query("SELECT count(*) FROM ev_setpoints").iloc[0, 0]

    # safety takes the charger (a failed write elsewhere): manual's 10 A must not come back by itself
    now = ctx.clock.wall()
    d = ledger.request(store, site_id=site.id, control="ev_charger", owner="safety", command="safe_mode",
                       reason="test: a failed write", lease_until=now + pd.Timedelta(minutes=5), now=now)
    ledger.finish(store, d, outcome="ok", command_id=None, error=None, end_status=None, now=now)
    _reboot(cp)
    wait_until(lambda: len(_refusals(store)) == 1, "the refusal")
    assert _refusals(store) == ["refused: safety holds the charger, not manual"]

    lapse_holds(store, site.id)  # nobody holds the charger any more
    _reboot(cp)
    wait_until(lambda: len(_refusals(store)) == 2, "the second refusal")
    assert _refusals(store)[-1] == "refused: manual's hold of the charger lapsed"
    assert store.query("SELECT count(*) FROM ev_setpoints").iloc[0, 0] == n_setpoints  # nothing was handed over
    assert _resends(store).empty  # no request reached the arbiter's ledger as granted
    assert cp.allowed_amps() != 10  # the charge point runs on its own default until the next owner decides
