"""Modbus fault injection against the Sungrow SH and Sigenergy simulators: after every fault the command is
recorded once, the battery is in a known state, and the saved state is restorable once the fault clears.

The fast subset runs in ``make test``; the full matrix (every fault kind on every write and on the reads of
each command, once and persistent) and random fault schedules run under the ``reliability`` marker. The
fault x outcome table: ``python -m powersync_pipelines_tests.devices.modbus_campaign``.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powersync_pipelines.devices import state
from powersync_pipelines.storage import HistoryStore

from ..arbitrated import arbitrated, restore_due
from .modbus_campaign import DRIVERS, FAULTS, Bench, Case, cases, fast_cases, run_case


@pytest.fixture(scope="module")
def bench():
    b = Bench()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def campaign_store(tmp_path_factory) -> HistoryStore:
    return HistoryStore(tmp_path_factory.mktemp("campaign") / "history.duckdb")


EXPECTED = {  # what the fast cases must end in (any good outcome is acceptable for the full matrix)
    "sungrow_sh-force_discharge-exception4-13049-p": "restore_owed",
    "sungrow_sh-force_discharge-exception6-13050-1": "ok",
    "sungrow_sh-force_charge-exception2-13051-p": "safe_state",
    "sungrow_sh-force_discharge-reset-13049-p": "restore_owed",
    "sungrow_sh-force_discharge-reset_after_write-13051-p": "restore_owed",
    "sungrow_sh-restore_normal-drop-13049-p": "restore_owed",
    "sungrow_sh-force_charge-drop_after_write-13050-1": "ok",
    "sungrow_sh-force_discharge-slow-reads-p": "ok",
    "sungrow_sh-force_charge-timeout-reads-1": "ok",
    "sigenergy-force_discharge-reset-40031-p": "safe_state",
    "sigenergy-restore_normal-exception4-40029-p": "restore_owed",
}


@pytest.mark.parametrize("case", fast_cases(), ids=lambda c: c.id)
def test_fault_ends_recorded_known_and_restorable(case: Case, bench, campaign_store):
    result = run_case(case, bench, campaign_store)
    assert result.good, (result.outcome, result.error, result.notes)
    assert result.outcome == EXPECTED[case.id], (result.outcome, result.error)


def test_the_fast_subset_covers_every_fault_kind_and_both_drivers():
    kinds = {(c.kind, c.code) for c in fast_cases()}
    assert kinds == set(FAULTS)
    assert {c.driver for c in fast_cases()} == set(DRIVERS)
    assert set(EXPECTED) == {c.id for c in fast_cases()}


FULL = [c for c in cases() if c not in set(fast_cases())]


@pytest.mark.reliability
@pytest.mark.parametrize("case", FULL, ids=lambda c: c.id)
def test_full_matrix_case(case: Case, bench, campaign_store):
    result = run_case(case, bench, campaign_store)
    assert result.good, (result.outcome, result.error, result.notes)


fault_st = st.tuples(st.sampled_from(FAULTS), st.booleans(), st.integers(0, 3))


@pytest.mark.reliability
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(driver=st.sampled_from(sorted(DRIVERS)), faults=st.lists(fault_st, min_size=1, max_size=3),
       commands=st.lists(st.sampled_from(["force_charge", "force_discharge", "restore_normal", "idle"]),
                         min_size=1, max_size=4))
def test_random_fault_schedules_never_lose_a_record_or_the_battery(driver, faults, commands, bench, tmp_path):
    """Several faults at once (each on a write of the driver or on reads) over a sequence of commands: every
    command is recorded with the outcome the caller saw, and once the faults clear one check restores the
    battery to where it started."""
    sim = bench.reset(driver)
    d = DRIVERS[driver]
    store = HistoryStore(tmp_path / f"sched-{len(list(tmp_path.iterdir()))}.duckdb")
    from .conftest import make_site

    battery = {"kind": driver, "host": "127.0.0.1", "port": sim.port, "timeout_s": 0.5, "connect_attempts": 2,
               "backoff_base_s": 0.01}
    site = make_site(battery, site_id=f"sched-{driver}")
    original = d.control(sim)
    registers = sorted({r for regs in d.writes.values() for r in regs})
    for (kind, code), persistent, where in faults:
        target = registers[where] if where < len(registers) else None
        sim.inject(kind, code=code or 4, address=target, on="read" if target is None else "write",
                   count=-1 if persistent else 1, delay_s={"slow": 0.1, "timeout": 0.8}.get(kind, 2.0))
    seen = []
    try:
        with arbitrated(store, site) as dev:
            for name in commands:
                r = {"force_charge": lambda: dev.force_charge(30, 2.0),
                     "force_discharge": lambda: dev.force_discharge(30, 3.0),
                     "restore_normal": dev.restore_normal,
                     "idle": lambda: dev.apply("IDLE", 0.0)}[name]()
                seen.append((r.command, r.outcome))
    finally:
        sim.clear_faults()
    recorded = store.query("SELECT command, outcome FROM commands ORDER BY issued_at")
    assert list(zip(recorded["command"], recorded["outcome"], strict=True)) == seen
    import pandas as pd

    restored = restore_due(store, site, pd.Timestamp.now(tz="UTC") + pd.Timedelta(hours=6))
    assert restored is None or restored.ok, restored.describe()
    pending = state.load_pending(store, site.id, "forced")
    assert pending is None
    assert d.control(sim) == original
