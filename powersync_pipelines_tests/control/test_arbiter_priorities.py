"""The arbiter applies the documented priority to every pair of owners, records every yield with the holder and
its lease, and puts safety above everyone: stale telemetry and rated power bind every owner, and a failed write
leaves the control to safety for a while."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest

from powersync_pipelines.control import ledger
from powersync_pipelines.control.arbiter import SAFETY_HOLD, Arbiter, Request
from powersync_pipelines.control.services import run_service
from powersync_pipelines.devices.maps import SG
from powersync_pipelines.owners import OWNERS, PRIORITY, outranks

PAIRS = [(hi, lo) for hi, lo in itertools.permutations(OWNERS, 2) if outranks(hi, lo)]


@dataclass
class Wrote:
    """A command outcome as a driver returns it (the arbiter reads only these fields)."""

    ok: bool = True
    outcome: str = "ok"
    error: str | None = None
    command_id: str | None = None
    written: dict[str, Any] = field(default_factory=lambda: {"register": 1})


def _req(owner: str, minutes: float = 30, **kw: Any) -> Request:
    lease = pd.Timestamp.now(tz="UTC") + pd.Timedelta(minutes=minutes)
    return Request("s1", "battery", owner, f"{owner}_command", f"{owner} wants the battery", lease_until=lease, **kw)


def test_the_priority_is_the_documented_order():
    assert list(OWNERS) == ["safety", "manual", "spike", "automation", "curtailment", "ev", "optimizer"]
    assert sorted(OWNERS, key=PRIORITY.get, reverse=True) == list(OWNERS)
    assert len(PAIRS) == 21


@pytest.mark.parametrize(("higher", "lower"), PAIRS)
def test_a_lower_owner_yields_to_a_higher_holder_and_is_recorded(store, higher, lower):
    arbiter = Arbiter(store)
    held = arbiter.act(_req(higher, 60), Wrote)
    assert held.ok
    wrote = []
    out = arbiter.act(_req(lower), lambda: wrote.append(1) or Wrote())
    assert out.yielded and not out.ok and wrote == []  # nothing was written
    assert out.holder.owner == higher and out.holder.lease_until == held.request.lease_until
    assert f"yielded to {higher} ({higher}_command) until" in out.describe()
    row = ledger.requests(store, "s1").iloc[0]
    assert (row["owner"], row["decision"], row["holder"], row["holder_command"]) == (lower, "yielded", higher,
                                                                                    f"{higher}_command")
    assert arbiter.holder("s1").owner == higher


@pytest.mark.parametrize(("higher", "lower"), PAIRS)
def test_a_higher_owner_takes_the_control_from_a_lower_holder(store, higher, lower):
    arbiter = Arbiter(store)
    assert arbiter.act(_req(lower, 60), Wrote).ok
    out = arbiter.act(_req(higher), Wrote)
    assert out.ok and out.holder.owner == lower
    assert arbiter.holder("s1").owner == higher
    holds = ledger.holds(store, "s1").set_index("owner")["status"].to_dict()
    assert holds == {lower: "preempted", higher: "held"}


def test_a_release_frees_the_control_and_the_next_request_takes_it(store):
    arbiter = Arbiter(store)
    arbiter.act(_req("manual", 60), Wrote)
    assert arbiter.act(Request("s1", "battery", "manual", "restore_normal", "owner done", releases=True), Wrote).ok
    assert arbiter.holder("s1") is None
    assert arbiter.act(_req("optimizer"), Wrote).ok and arbiter.holder("s1").owner == "optimizer"


def test_a_lapsed_lease_holds_nothing(store):
    now = [pd.Timestamp("2026-01-01T00:00Z")]
    arbiter = Arbiter(store, now=lambda: now[0])
    arbiter.act(Request("s1", "battery", "manual", "force_charge", "x", lease_until=now[0] + pd.Timedelta(minutes=15)),
                Wrote)
    now[0] += pd.Timedelta(minutes=15)
    assert arbiter.holder("s1") is None
    assert arbiter.act(Request("s1", "battery", "optimizer", "apply:CHARGE", "plan"), Wrote).ok


def test_controls_are_held_independently(store):
    arbiter = Arbiter(store)
    arbiter.act(Request("s1", "battery_export", "curtailment", "curtail", "negative export price"), Wrote)
    assert arbiter.act(_req("optimizer"), Wrote).ok  # the battery's mode is a different control
    assert arbiter.holder("s1", "battery_export").owner == "curtailment"


@pytest.mark.parametrize("owner", [o for o in OWNERS if o != "safety"])
def test_a_failed_write_leaves_safety_holding_against_every_owner(store, owner):
    arbiter = Arbiter(store)
    failed = arbiter.act(_req("optimizer"), lambda: Wrote(ok=False, outcome="error", error="reset mid-write"))
    assert failed.safety_hold is not None and failed.safety_hold.owner == "safety"
    assert failed.safety_hold.lease_until - failed.safety_hold.acquired_at == SAFETY_HOLD
    out = arbiter.act(_req(owner), Wrote)
    assert out.yielded and out.holder.owner == "safety" and "reset mid-write" in out.holder.reason


def test_a_refusal_is_recorded_and_holds_nothing(store):
    arbiter = Arbiter(store)
    out = arbiter.act(_req("manual"), lambda: Wrote(ok=False, outcome="refused", error="stale", written={}))
    assert out.decision == "refused" and out.safety_hold is None and arbiter.holder("s1") is None
    assert ledger.requests(store, "s1").iloc[0]["decision"] == "refused"


# -- safety on a real device: the driver's rules bind every owner ---------------------------------------------------
@pytest.mark.parametrize("owner", ["manual", "automation", "spike", "optimizer"])
def test_stale_telemetry_refuses_every_owner(sungrow_sim, sungrow_site, ctx, owner):
    sungrow_sim.inject("timeout", on="read", count=-1, delay_s=0.8)
    out = run_service("force_charge", sungrow_site, {"duration_minutes": 30, "kw": 2.0}, ctx, owner=owner)
    sungrow_sim.clear_faults()
    assert out["outcome"] == "refused" and "refusing to command" in out["error"]
    assert sungrow_sim.written_addresses(accepted_only=False) == []
    assert ctx.arbiter.holder(sungrow_site.id) is None


@pytest.mark.parametrize("owner", ["manual", "automation", "spike", "optimizer"])
def test_rated_power_binds_every_owner(sungrow_sim, sungrow_site, ctx, owner):
    out = run_service("force_discharge", sungrow_site, {"duration_minutes": 30, "kw": 9.0}, ctx, owner=owner)
    assert out["ok"] and out["params"]["clamped_to_rated_kw"] == 5.0
    assert sungrow_sim.state["forced_power_w"] == 5000


def test_a_spike_holding_the_battery_outranks_an_automation_and_the_optimizer(sungrow_sim, sungrow_site, ctx):
    assert run_service("force_discharge", sungrow_site, {"duration_minutes": 30}, ctx, owner="spike")["ok"]
    auto = run_service("force_charge", sungrow_site, {"duration_minutes": 30}, ctx, owner="automation")
    plan = run_service("restore_normal", sungrow_site, {}, ctx, owner="optimizer")
    assert auto["outcome"] == plan["outcome"] == "yielded" and auto["holder"] == plan["holder"] == "spike"
    assert sungrow_sim.state["command"] == SG.CMD_DISCHARGE
    manual = run_service("force_charge", sungrow_site, {"duration_minutes": 30, "kw": 1.0}, ctx)
    assert manual["ok"] and sungrow_sim.state["command"] == SG.CMD_CHARGE  # the owner outranks the spike


@pytest.fixture
def store(any_store):
    """The control ledger's tests run on DuckDB and on PostgreSQL."""
    return any_store
