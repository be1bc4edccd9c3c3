"""The Modbus part of the fault campaign (issue 31): every fault the simulators can inject, on every write and
on the reads of a command, transient and persistent, against the Sungrow SH and Sigenergy drivers.

After each case three things must hold, whatever the fault: the command is recorded exactly once with the
outcome the caller saw; the battery is in a known state (the commanded one, its saved state, untouched, or a
restore recorded as owed); and once the fault is gone the saved state is restorable (the battery ends where it
started). ``run_campaign`` returns one ``CaseResult`` per case; ``markdown_table`` counts fault x outcome.
``python -m powersync_pipelines_tests.devices.modbus_campaign [--fast]`` prints the table.

Outcome classes: ``ok``, ``refused`` (nothing written), ``safe_state`` (failed, battery back in its saved
state), ``restore_owed`` (failed; the restore failed too and is recorded as ``restore_failed`` for the watch).
Failures of the campaign: ``leaked`` (an exception escaped), ``lost`` / ``duplicated`` (command rows),
``unknown_state``, ``wedged`` (not restorable after the fault cleared).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from powersync_pipelines.devices import state
from powersync_pipelines.devices.maps import SG, SIG
from powersync_pipelines.sim.modbus_server import ModbusSimulator
from powersync_pipelines.storage import HistoryStore

from ..arbitrated import arbitrated, restore_due
from .conftest import make_site

GOOD = ("ok", "refused", "safe_state", "restore_owed")
BAD = ("leaked", "lost", "duplicated", "unknown_state", "wedged")
TIMEOUT_S = 0.5
FAULTS: tuple[tuple[str, int | None], ...] = (
    ("exception", 2), ("exception", 4), ("exception", 6), ("drop", None), ("drop_after_write", None),
    ("reset", None), ("reset_after_write", None), ("slow", None), ("timeout", None),
)
COMMANDS = ("force_charge", "force_discharge", "restore_normal")


@dataclass(frozen=True)
class Driver:
    kind: str
    writes: dict[str, tuple[int, ...]]  # command -> holding registers it writes, in order
    control: Callable[[ModbusSimulator], tuple[Any, ...]]
    target: Callable[[str, tuple[Any, ...]], tuple[Any, ...]]
    unit: int


def _sungrow_control(sim: ModbusSimulator) -> tuple[Any, ...]:
    h = sim.state["holding"]
    return tuple(h[a] for a in (SG.EMS_MODE, SG.COMMAND, SG.FORCED_POWER, SG.RESERVE, SG.EXPORT_SWITCH,
                                SG.EXPORT_LIMIT, SG.MAX_CHARGE_POWER, SG.MAX_DISCHARGE_POWER))


def _sungrow_target(command: str, before: tuple[Any, ...]) -> tuple[Any, ...]:
    if command == "force_charge":
        return (SG.MODE_FORCED, SG.CMD_CHARGE, 2000, *before[3:])
    return (SG.MODE_FORCED, SG.CMD_DISCHARGE, 3000, *before[3:])


def _sigen_control(sim: ModbusSimulator) -> tuple[Any, ...]:
    s = sim.state
    return (s["remote_ems"], s["control_mode"], s["charge_limit_w"], s["discharge_limit_w"], s["export_limit_w"],
            s["backup_soc_pct"])


def _sigen_target(command: str, before: tuple[Any, ...]) -> tuple[Any, ...]:
    if command == "force_charge":
        return (1, SIG.MODE_CHARGE_PV, 2000, before[3], *before[4:])
    return (1, SIG.MODE_DISCHARGE_ESS, before[2], 3000, *before[4:])


DRIVERS = {
    "sungrow_sh": Driver("sungrow_sh", {
        "force_charge": (SG.FORCED_POWER, SG.EMS_MODE, SG.COMMAND),
        "force_discharge": (SG.FORCED_POWER, SG.EMS_MODE, SG.COMMAND),
        "restore_normal": (SG.COMMAND, SG.FORCED_POWER, SG.EMS_MODE),
    }, _sungrow_control, _sungrow_target, 1),
    "sigenergy": Driver("sigenergy", {
        "force_charge": (SIG.CHARGE_LIMIT, SIG.REMOTE_EMS, SIG.CONTROL_MODE),
        "force_discharge": (SIG.DISCHARGE_LIMIT, SIG.REMOTE_EMS, SIG.CONTROL_MODE),
        "restore_normal": (SIG.DISCHARGE_LIMIT, SIG.CONTROL_MODE, SIG.REMOTE_EMS),
    }, _sigen_control, _sigen_target, SIG.PLANT_UNIT),
}


@dataclass(frozen=True)
class Case:
    driver: str
    command: str
    kind: str
    code: int | None
    target: int | None  # register written, or None = every read
    persistent: bool

    @property
    def fault(self) -> str:
        what = f"{self.kind} {self.code}" if self.code is not None else self.kind
        return f"{what} ({'persistent' if self.persistent else 'once'})"

    @property
    def id(self) -> str:
        where = self.target if self.target is not None else "reads"
        return f"{self.driver}-{self.command}-{self.kind}{self.code or ''}-{where}-{'p' if self.persistent else '1'}"


@dataclass
class CaseResult:
    case: Case
    outcome: str
    command_outcome: str | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def good(self) -> bool:
        return self.outcome in GOOD


def cases(drivers: Iterable[str] = tuple(DRIVERS), commands: Iterable[str] = COMMANDS) -> list[Case]:
    """The full matrix: every fault kind on every write of each command and on its reads, once and persistent."""
    out = []
    for d in drivers:
        for cmd in commands:
            for target in (*DRIVERS[d].writes[cmd], None):
                for kind, code in FAULTS:
                    for persistent in (False, True):
                        out.append(Case(d, cmd, kind, code, target, persistent))
    return out


def fast_cases() -> list[Case]:
    """One case per fault kind plus the item-3 shape on both drivers: the subset ``make test`` runs."""
    return [
        Case("sungrow_sh", "force_discharge", "exception", 4, SG.EMS_MODE, True),
        Case("sungrow_sh", "force_discharge", "exception", 6, SG.COMMAND, False),
        Case("sungrow_sh", "force_charge", "exception", 2, SG.FORCED_POWER, True),
        Case("sungrow_sh", "force_discharge", "reset", None, SG.EMS_MODE, True),
        Case("sungrow_sh", "force_discharge", "reset_after_write", None, SG.FORCED_POWER, True),
        Case("sungrow_sh", "restore_normal", "drop", None, SG.EMS_MODE, True),
        Case("sungrow_sh", "force_charge", "drop_after_write", None, SG.COMMAND, False),
        Case("sungrow_sh", "force_discharge", "slow", None, None, True),
        Case("sungrow_sh", "force_charge", "timeout", None, None, False),
        Case("sigenergy", "force_discharge", "reset", None, SIG.CONTROL_MODE, True),
        Case("sigenergy", "restore_normal", "exception", 4, SIG.REMOTE_EMS, True),
    ]


# -- running ---------------------------------------------------------------------------------------------
class Bench:
    """One simulator per driver for the whole campaign, put back to its initial registers before each case."""

    def __init__(self) -> None:
        from powersync_pipelines.sim.sigenergy import SigenergySimulator
        from powersync_pipelines.sim.sungrow_sh import SungrowSimulator

        self.sims: dict[str, ModbusSimulator] = {
            "sungrow_sh": SungrowSimulator(port=0, soc=0.5, load_kw=1.0, time_scale=0.0).start(),
            "sigenergy": SigenergySimulator(port=0, soc=0.5, load_kw=1.0, time_scale=0.0).start(),
        }
        self.initial = {k: {u: dict(t) for u, t in s.holding.items()} for k, s in self.sims.items()}

    def reset(self, driver: str) -> ModbusSimulator:
        sim = self.sims[driver]
        sim.clear_faults()
        with sim.lock:
            for unit, table in self.initial[driver].items():
                sim.holding[unit].update(table)
            sim.model.soc = 0.5
            sim.refresh()
        sim.clear_log()
        return sim

    def stop(self) -> None:
        for sim in self.sims.values():
            sim.stop()


def _inject(sim: ModbusSimulator, case: Case) -> None:
    count = -1 if case.persistent else 1
    on = "read" if case.target is None else "write"
    delay = {"slow": TIMEOUT_S / 5, "timeout": TIMEOUT_S * 1.6}.get(case.kind, 2.0)
    sim.inject(case.kind, code=case.code or 4, address=case.target, on=on, count=count, delay_s=delay)


def _command(dev: Any, name: str) -> Any:
    if name == "force_charge":
        return dev.force_charge(30, 2.0)
    if name == "force_discharge":
        return dev.force_discharge(30, 3.0)
    return dev.restore_normal()


def run_case(case: Case, bench: Bench, store: HistoryStore) -> CaseResult:
    driver = DRIVERS[case.driver]
    sim = bench.reset(case.driver)
    battery: dict[str, Any] = {"kind": case.driver, "host": "127.0.0.1", "port": sim.port, "timeout_s": TIMEOUT_S,
                               "connect_attempts": 2, "backoff_base_s": 0.01}
    if case.driver == "sungrow_sh":
        battery["device_id"] = driver.unit
    site = make_site(battery, site_id=case.id)
    original = driver.control(sim)
    if case.command == "restore_normal":
        with arbitrated(store, site) as dev:
            setup = dev.force_discharge(30, 3.0)
        if not setup.ok:
            return CaseResult(case, "unknown_state", error=f"setup force failed: {setup.error}")
    before = driver.control(sim)
    target = original if case.command == "restore_normal" else driver.target(case.command, before)

    _inject(sim, case)
    try:
        with arbitrated(store, site) as dev:
            result = _command(dev, case.command)
    except Exception as exc:  # noqa: BLE001 - this is what the campaign looks for
        sim.clear_faults()
        return CaseResult(case, "leaked", error=f"{type(exc).__name__}: {exc}")
    finally:
        sim.clear_faults()

    res = CaseResult(case, "", command_outcome=result.outcome, error=result.error)
    rows = store.query("SELECT outcome FROM commands WHERE site_id = ? AND command = ?", [site.id, case.command])
    if len(rows) != 1:
        res.outcome = "lost" if len(rows) == 0 else "duplicated"
        return res
    if rows["outcome"].iloc[0] != result.outcome:
        res.outcome, res.error = "lost", f"recorded {rows['outcome'].iloc[0]!r}, caller saw {result.outcome!r}"
        return res

    now = driver.control(sim)
    saved = state.load(store, site.id, "forced")
    owed = saved is not None and saved.status == "restore_failed" and saved.attempts >= 1 and bool(saved.last_error)
    if result.ok:
        res.outcome = "ok" if now == target else "unknown_state"
    elif result.outcome == "refused":
        res.outcome = "refused" if now == before else "unknown_state"
    elif owed:
        res.outcome = "restore_owed"
    elif now == original and (saved is None or not saved.pending):
        res.outcome = "safe_state"
    else:
        res.outcome = "unknown_state"
    if res.outcome == "unknown_state":
        res.notes.append(f"registers {now}, expected {target} or {original}; saved {saved}")
        return res

    later = pd.Timestamp.now(tz="UTC") + pd.Timedelta(hours=6)
    restored = restore_due(store, site, later)
    if restored is not None and not restored.ok:
        res.outcome, res.error = "wedged", f"restore after the fault cleared: {restored.describe()}"
    elif driver.control(sim) != original:
        res.outcome = "wedged"
        res.notes.append(f"after restore: {driver.control(sim)} != {original}")
    return res


@contextmanager
def campaign_store(folder: str | None = None) -> Iterator[HistoryStore]:
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        yield HistoryStore(os.path.join(tmp, "campaign.duckdb"))


def run_campaign(selected: Iterable[Case], store: HistoryStore) -> list[CaseResult]:
    bench = Bench()
    try:
        return [run_case(c, bench, store) for c in selected]
    finally:
        bench.stop()


def markdown_table(results: list[CaseResult]) -> str:
    """Fault x outcome counts (all drivers, commands and targets together)."""
    columns = [*GOOD, *BAD]
    counts: dict[str, Counter[str]] = {}
    for r in results:
        counts.setdefault(r.case.fault, Counter())[r.outcome] += 1
    lines = ["| fault | " + " | ".join(columns) + " | cases |", "|---" * (len(columns) + 2) + "|"]
    for fault in sorted(counts):
        c = counts[fault]
        lines.append(f"| {fault} | " + " | ".join(str(c[k]) for k in columns) + f" | {sum(c.values())} |")
    total = Counter(r.outcome for r in results)
    lines.append("| **all** | " + " | ".join(f"**{total[k]}**" for k in columns) + f" | **{len(results)}** |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="only the subset make test runs")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as home:
        os.environ.setdefault("POWERSYNC_HOME", home)
        with campaign_store() as store:
            results = run_campaign(fast_cases() if args.fast else cases(), store)
    print(markdown_table(results))
    bad = [r for r in results if not r.good]
    for r in bad:
        print(f"- {r.case.id}: {r.outcome}: {r.error} {' '.join(r.notes)}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
