"""``powersync bench fleet``: generated sites on one loopback simulator process, one reoptimize_job run in a real
Dagster instance and DuckDB file, and the JSON report the issue names."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from powersync_pipelines.cli import main as cli_main
from powersync_pipelines.commands.bench import STAGES

pytestmark = pytest.mark.timeout(900)  # two real cycles on a loaded 2-core machine


def _bench(tmp_path: Path, *extra: str) -> tuple[int, dict]:
    out = tmp_path / "fleet.json"
    rc = cli_main(["bench", "fleet", "--out", str(out), "--workdir", str(tmp_path / "work"), *extra])
    return rc, json.loads(out.read_text())


def _db(report: dict) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(report["store"]["path"], read_only=True)


def test_five_sites_are_planned_commanded_and_reported(tmp_path: Path) -> None:
    rc, report = _bench(tmp_path, "--sites", "5")
    assert rc == 0, report["failures"]
    assert report["sites"] == 5 and report["failures"] == [] and report["success"]
    assert report["cycle_s"] > 0 and report["peak_rss_mb"] > 0
    assert report["store"]["kind"] == "duckdb" and Path(report["store"]["path"]).exists()
    assert set(report["per_site_ms"]) == set(STAGES)
    for stage, ms in report["per_site_ms"].items():
        assert 0 <= ms["p50"] <= ms["p95"] <= ms["max"], stage
    assert report["plans_stored"] == 5 and report["schedule_rows"] == 5 * 576
    assert report["command_outcomes"] == {"ok": report["commands_written"]} and report["commands_written"] >= 5
    con = _db(report)
    try:
        per_site = con.execute("SELECT site_id, count(*) FROM plans GROUP BY 1 ORDER BY 1").fetchall()
        kinds = {r[0] for r in con.execute("SELECT DISTINCT device_kind FROM commands").fetchall()}
    finally:
        con.close()
    assert per_site == [(f"site{i:05d}", 1) for i in range(5)]  # one plan per site, none doubled
    assert kinds == {k for k, n in report["batteries"].items() if n}  # every simulated kind was commanded


def test_a_battery_that_never_answers_is_a_listed_failure_and_the_others_go_on(tmp_path: Path) -> None:
    rc, report = _bench(tmp_path, "--sites", "4", "--silent", "1")
    assert rc == 1 and not report["success"]
    assert report["silent_batteries"] == ["site00000"]
    assert {f["site_id"] for f in report["failures"]} == {"site00000"}
    assert any(f["stage"] == "battery_commands" for f in report["failures"])
    assert report["plans_stored"] == 4  # the quiet site is still planned, from its last known SOC
    con = _db(report)
    try:
        ok = {r[0] for r in con.execute("SELECT site_id FROM commands WHERE owner = 'optimizer' AND outcome = 'ok'")
              .fetchall()}
        soc_source = con.execute("SELECT soc_initial FROM plans WHERE site_id = 'site00000'").fetchone()
    finally:
        con.close()
    assert ok == {"site00001", "site00002", "site00003"}
    assert soc_source is not None


def test_the_fleet_cycle_runs_on_postgresql_with_the_one_setting(tmp_path: Path, pg_url: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``POWERSYNC_DATABASE_URL`` the same cycle keeps its history and its Dagster run in PostgreSQL."""
    import psycopg

    monkeypatch.setenv("POWERSYNC_DATABASE_URL", pg_url)
    rc, report = _bench(tmp_path, "--sites", "3")
    assert rc == 0, report["failures"]
    assert report["store"]["kind"] == "postgresql"
    assert report["plans_stored"] == 3 and report["schedule_rows"] == 3 * 576
    assert report["command_outcomes"] == {"ok": report["commands_written"]}
    assert not (tmp_path / "work" / "powersync.duckdb").exists()  # nothing went to a DuckDB file
    with psycopg.connect(pg_url) as con:
        per_site = con.execute("SELECT site_id, count(*) FROM plans GROUP BY 1 ORDER BY 1").fetchall()
        runs = con.execute("SELECT count(*) FROM runs WHERE run_id = %s", [report["run_id"]]).fetchone()[0]
    assert per_site == [(f"site{i:05d}", 1) for i in range(3)]
    assert runs == 1  # Dagster's run storage is the same database
