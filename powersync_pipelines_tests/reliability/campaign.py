"""Kill -9 at random points of ``powersync demo`` and concurrent first starts, with what each left behind.

Each kill case starts a real demo on one home, waits until its run has logged a seeded-random number of events
(a point in the run that does not depend on machine speed), kills the process group with SIGKILL, then runs the
next demo on the same home and classifies the outcome:

* ``recovered``: the next demo exited 0, the dead run was swept to FAILURE, no pool slot is left, every plan a
  run reported materialised is in DuckDB with all its schedule rows, no key is stored twice, and no saved device
  state is stuck (``restore_failed``, or ``active`` past its lease);
* otherwise the first check that failed: ``wedged`` (next demo did not finish), ``failed_next``, ``not_swept``,
  ``lost``, ``duplicated``, ``unknown_state``.

A concurrent-start case starts N demos together on a fresh home: ``ok`` when all exit 0, ``runs.db`` has one
alembic head and a later demo succeeds. ``python -m powersync_pipelines_tests.reliability.campaign --write``
runs the campaign and regenerates ``docs/reliability.md`` (``make reliability`` does).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import duckdb

from powersync_pipelines.paths import REPO_ROOT

from .runs import instance_of, run_demo, slot_holders, start_demo, wait_until

GOOD = ("recovered", "ok")
BAD = ("wedged", "failed_next", "not_swept", "lost", "duplicated", "unknown_state", "two_heads", "failed_start")
# the keys that identify a stored row; a count above one for any of them is a duplicated record
KEYS = {"plans": "plan_id", "schedule": "site_id, plan_id, interval_start", "commands": "command_id",
        "telemetry": "site_id, ts", "tariff_payloads": "payload_id", "device_saved_state": "site_id, slot"}


@dataclass
class Outcome:
    fault: str
    outcome: str
    detail: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def good(self) -> bool:
        return self.outcome in GOOD


def _events(root: Path) -> int:
    instance = instance_of(root)
    runs = instance.get_runs(limit=1)
    return len(instance.all_logs(runs[0].run_id)) if runs else 0


def reference_events(root: Path, log: Path) -> int:
    """Events a complete demo logs on this home (the range kill points are drawn from)."""
    if run_demo(root, log) != 0:
        raise RuntimeError(f"the reference demo failed:\n{log.read_text()[-3000:]}")
    instance = instance_of(root)
    return len(instance.all_logs(instance.get_runs(limit=1)[0].run_id))


def _stored_plans(instance: dg.DagsterInstance) -> set[str]:
    """Plan ids that a run's battery_schedule materialisation reported (they must be in DuckDB)."""
    plans: set[str] = set()
    records = instance.fetch_materializations(dg.AssetKey("battery_schedule"), limit=1000).records
    for record in records:
        mat = record.asset_materialization
        for key, value in (mat.metadata if mat else {}).items():
            if key.endswith("/plan_id"):
                plans.add(str(value.value))
    return plans


def check_history(root: Path) -> tuple[str, str]:
    """("ok" | "lost" | "duplicated" | "unknown_state", detail) for the home's DuckDB after a recovery."""
    db = root / "powersync.duckdb"
    plans = _stored_plans(instance_of(root))
    with duckdb.connect(str(db), read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        for table, key in KEYS.items():
            if table in tables:
                dup = con.execute(f"SELECT count(*) FROM (SELECT {key} FROM {table} GROUP BY ALL "  # noqa: S608
                                  "HAVING count(*) > 1)").fetchall()[0][0]
                if dup:
                    return "duplicated", f"{dup} keys of {table} stored twice"
        for plan_id in sorted(plans):
            n = con.execute("SELECT count(*) FROM schedule WHERE plan_id = ?", [plan_id]).fetchall()[0][0]
            head = con.execute("SELECT count(*) FROM plans WHERE plan_id = ?", [plan_id]).fetchall()[0][0]
            if head != 1 or n == 0:
                return "lost", f"plan {plan_id} reported materialised: {head} plans row(s), {n} schedule rows"
        if "device_saved_state" in tables:
            stuck = con.execute("SELECT site_id, slot, status FROM device_saved_state WHERE status = 'restore_failed'"
                                " OR (status = 'active' AND expires_at < now())").fetchall()
            if stuck:
                return "unknown_state", f"saved device state not restored: {stuck}"
    return "ok", f"{len(plans)} plans checked"


def kill_case(root: Path, workdir: Path, kill_at: int, index: int) -> Outcome:
    """Kill a demo after its run logged ``kill_at`` events, then recover with the next demo."""
    fault = "kill -9 during a demo"
    before = {r.run_id for r in instance_of(root).get_runs()} if (root / "dagster" / "history").exists() else set()
    proc = start_demo(root, workdir / f"killed{index}.log")
    try:
        def reached() -> bool:
            runs = [r for r in instance_of(root).get_runs(limit=2) if r.run_id not in before]
            return bool(runs) and len(instance_of(root).all_logs(runs[0].run_id)) >= kill_at

        wait_until(lambda: proc.poll() is not None or reached(), 300, poll_s=0.02)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    notes = [f"killed after {kill_at} events" if proc.returncode == -signal.SIGKILL else "finished before the kill"]
    instance = instance_of(root)
    killed = [r for r in instance.get_runs() if r.run_id not in before]
    held = bool(slot_holders(instance))
    notes.append("a pool slot was held at the kill" if held else "no pool slot was held at the kill")
    rc = run_demo(root, workdir / f"next{index}.log", timeout_s=300, POWERSYNC_POOL_WAIT_S="120")
    if rc == -9:
        return Outcome(fault, "wedged", "the next demo did not finish in 300 s", notes)
    if rc != 0:
        return Outcome(fault, "failed_next", (workdir / f"next{index}.log").read_text()[-500:], notes)
    instance = instance_of(root)
    for run in killed:
        status = instance.get_run_by_id(run.run_id).status
        if status not in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.SUCCESS):
            return Outcome(fault, "not_swept", f"run {run.run_id} left {status}", notes)
    if slot_holders(instance):
        return Outcome(fault, "not_swept", f"slots still held: {slot_holders(instance)}", notes)
    verdict, detail = check_history(root)
    return Outcome(fault, "recovered" if verdict == "ok" else verdict, detail, notes)


def kill_loop(workdir: Path, kills: int, seed: int) -> list[Outcome]:
    """``kills`` kill/recover cycles on one home at seeded-random points of the run."""
    rng = random.Random(seed)
    root = workdir / "home"
    total = reference_events(root, workdir / "reference.log")
    return [kill_case(root, workdir, rng.randint(1, total), i) for i in range(kills)]


def alembic_heads(root: Path) -> list[str]:
    with sqlite3.connect(root / "dagster" / "history" / "runs.db") as con:
        return [r[0] for r in con.execute("SELECT version_num FROM alembic_version")]


def concurrent_case(workdir: Path, n: int, index: int) -> Outcome:
    fault = f"{n} demos started together on a fresh home"
    root = workdir / f"fresh{index}"
    procs = [start_demo(root, workdir / f"fresh{index}-{i}.log", POWERSYNC_POOL_WAIT_S="300") for i in range(n)]
    rcs = [p.wait(timeout=600) for p in procs]
    if any(rcs):
        return Outcome(fault, "failed_start", f"exit codes {rcs}")
    heads = alembic_heads(root)
    if len(heads) != 1:
        return Outcome(fault, "two_heads", f"alembic heads {heads}")
    if run_demo(root, workdir / f"fresh{index}-later.log") != 0:
        return Outcome(fault, "failed_next", "a later demo failed")
    verdict, detail = check_history(root)
    return Outcome(fault, "ok" if verdict == "ok" else verdict, detail)


def markdown_table(results: list[Outcome]) -> str:
    columns = [*GOOD, *BAD]  # every bad outcome shown, zero included: the table itself says none happened
    counts: dict[str, Counter[str]] = {}
    for r in results:
        counts.setdefault(r.fault, Counter())[r.outcome] += 1
    lines = ["| fault | " + " | ".join(columns) + " | cases |", "|---" * (len(columns) + 2) + "|"]
    for fault, c in counts.items():
        lines.append(f"| {fault} | " + " | ".join(str(c[k]) for k in columns) + f" | {sum(c.values())} |")
    return "\n".join(lines)


def render(kills: list[Outcome], starts: list[Outcome], modbus: str | None, seed: int, modbus_full: bool) -> str:
    held = sum("a pool slot was held at the kill" in r.notes for r in kills)
    parts = [
        "# Reliability campaign",
        "",
        "Generated by `make reliability` (`python -m powersync_pipelines_tests.reliability.campaign --write`); do not "
        "edit by hand. Every case runs the real CLI in its own process against a real DuckDB file and Dagster "
        "instance (issue 31).",
        "",
        "## Crashes and concurrent starts",
        "",
        f"Kill points drawn with seed {seed} from the events of a complete run; {held} of {len(kills)} kills "
        "landed while a step held the `duckdb_history` pool slot. `recovered`/`ok` are the only good outcomes.",
        "",
        markdown_table(kills + starts),
    ]
    bad = [r for r in kills + starts if not r.good]
    if bad:
        parts += ["", "Failures:", *[f"- {r.fault}: {r.outcome}: {r.detail}" for r in bad]]
    if modbus is not None:
        parts += ["", "## Modbus faults", "",
                  "From `powersync_pipelines_tests/devices/modbus_campaign.py` on the Sungrow SH and Sigenergy "
                  "simulators: " + ("every fault kind on every write and read of each command"
                                    if modbus_full else "the fast subset `make test` runs (`--modbus-full` for "
                                    "the whole matrix, which `pytest -m reliability` also runs)") + ".", "", modbus]
    return "\n".join(parts) + "\n"


def _modbus_table(full: bool) -> str:
    from powersync_pipelines.storage import HistoryStore

    from ..devices.modbus_campaign import cases, fast_cases, run_campaign
    from ..devices.modbus_campaign import markdown_table as modbus_markdown

    with tempfile.TemporaryDirectory() as tmp:
        results = run_campaign(cases() if full else fast_cases(), HistoryStore(Path(tmp) / "campaign.duckdb"))
    return modbus_markdown(results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument("--concurrent", type=int, default=3, help="demos per concurrent start")
    parser.add_argument("--starts", type=int, default=1, help="concurrent-start trials")
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--write", action="store_true", help="write docs/reliability.md")
    parser.add_argument("--skip-modbus", action="store_true", help="leave the Modbus fault table out")
    parser.add_argument("--modbus-full", action="store_true",
                        help="the full Modbus matrix in the table (tens of minutes) instead of its fast subset")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        kills = kill_loop(work, args.kills, args.seed)
        starts = [concurrent_case(work, args.concurrent, i) for i in range(args.starts)]
    text = render(kills, starts, None if args.skip_modbus else _modbus_table(args.modbus_full), args.seed,
                  args.modbus_full)
    if args.write:
        (REPO_ROOT / "docs" / "reliability.md").write_text(text)
    print(text)
    return 0 if all(r.good for r in kills + starts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
