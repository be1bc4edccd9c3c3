"""``powersync bench fleet --shards K``: K real reoptimize_job runs (one per shard key) in K processes released
together on one Dagster instance and history store; the report merges their figures and checks what was stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from powersync_pipelines.cli import main as cli_main
from powersync_pipelines.commands.bench import STAGES
from powersync_pipelines.commands.bench_shards import merge_stage_timings
from powersync_pipelines.control.fleet import shard_keys, sites_of_shard
from powersync_pipelines.sim.fleet import fleet_devices

pytestmark = pytest.mark.timeout(900)  # three shard processes on a loaded 2-core machine

SITES, SHARDS = 6, 3


def _bench(tmp_path: Path) -> tuple[int, dict]:
    out = tmp_path / "fleet.json"
    rc = cli_main(["bench", "fleet", "--sites", str(SITES), "--shards", str(SHARDS), "--out", str(out),
                   "--workdir", str(tmp_path / "work")])
    return rc, json.loads(out.read_text())


def _assert_sharded_cycle(rc: int, report: dict) -> None:
    assert rc == 0 and report["success"], (report["failures"], report.get("shard_runs"))
    # the one-run contract is all there
    for name in ("sites", "cycle_s", "per_site_ms", "peak_rss_mb", "failures", "store"):
        assert name in report, name
    assert report["sites"] == SITES and report["failures"] == [] and report["shards"] == SHARDS
    # three shard runs, each SUCCESS in Dagster's run storage, each planning exactly its shard's sites
    site_ids = [d["id"] for d in fleet_devices(SITES, seed=7)]
    runs = report["shard_runs"]
    assert [r["shard"] for r in runs] == shard_keys(SHARDS)
    for r in runs:
        assert r["status"] == "SUCCESS" and r["failures"] == 0, r
        assert r["sites"] == r["sites_planned"] == len(sites_of_shard(r["shard"], site_ids)), r
        assert 0 < r["cycle_s"] <= report["cycle_s"] and r["peak_rss_mb"] > 0
    assert sum(r["sites"] for r in runs) == SITES
    assert report["runs_success_in_storage"] == SHARDS == report["job_runs_in_storage"]
    assert len(set(report["run_ids"])) == SHARDS
    assert report["cycle_s"] == max(r["cycle_s"] for r in runs)  # release to the last run's end
    # memory: the sum of the concurrent processes' peaks, and the largest one
    assert report["peak_rss_mb"] == report["peak_rss_mb_sum_of_shards"] == pytest.approx(
        sum(r["peak_rss_mb"] for r in runs), abs=0.2)
    assert report["peak_rss_mb_max_shard"] == max(r["peak_rss_mb"] for r in runs)
    # stored: one plan per site (none lost, none doubled), a full 48 h schedule each
    assert report["plans_stored"] == report["plan_rows"] == SITES
    assert report["sites_not_planned"] == [] and report["sites_planned_more_than_once"] == []
    assert report["schedule_rows"] == report["schedule_rows_expected"] == SITES * 576
    assert report["stored_as_expected"] and report["planned_with_partitions"]
    # per-stage timings merged over all six sites
    assert set(report["per_site_ms"]) == set(STAGES)
    for stage, ms in report["per_site_ms"].items():
        assert 0 <= ms["p50"] <= ms["p95"] <= ms["max"], stage
        assert ms["amortised"] == pytest.approx(report["stage_s"][stage] * 1000 / SITES, abs=0.1), stage
    assert report["command_outcomes"] == {"ok": report["commands_written"]} and report["commands_written"] >= SITES


def test_three_shard_runs_on_duckdb_take_turns_and_plan_each_site_once(tmp_path: Path) -> None:
    rc, report = _bench(tmp_path)
    _assert_sharded_cycle(rc, report)
    assert report["store"]["kind"] == "duckdb"
    assert report["pool_slots"]["duckdb_history"] == 1  # one writer on the file: the shards take turns


def test_three_shard_runs_on_postgresql_run_at_once_and_plan_each_site_once(
        tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg

    monkeypatch.setenv("POWERSYNC_DATABASE_URL", pg_url)
    rc, report = _bench(tmp_path)
    _assert_sharded_cycle(rc, report)
    assert report["store"]["kind"] == "postgresql"
    assert report["pool_slots"] == {"duckdb_history": 4, "modbus": 4}  # the shards are admitted together
    with psycopg.connect(pg_url) as con:
        statuses = con.execute("SELECT run_id, status FROM runs").fetchall()
    assert sorted(statuses) == sorted((r, "SUCCESS") for r in report["run_ids"])


def test_merged_percentiles_are_of_every_site_not_of_the_shards_figures() -> None:
    """Two shards, one slow: the fleet's p50 is the middle of all five sites, not the mean of two medians."""
    merged = merge_stage_timings(
        [{"battery_schedule": [10.0, 10.0, 10.0]}, {"battery_schedule": [1000.0, 2000.0]}],
        [{"battery_schedule": 0.03}, {"battery_schedule": 3.0}])
    ms = merged["per_site_ms"]["battery_schedule"]
    assert ms["p50"] == 10.0 and ms["max"] == 2000.0 and ms["p95"] == pytest.approx(1800.0)
    assert ms["amortised"] == pytest.approx(3030 / 5)
    assert merged["stage_s"] == {"battery_schedule": 3.03}
    assert set(merged["per_site_ms"]) == {"battery_schedule"}  # a stage no shard ran is not invented


def test_shards_out_of_range_are_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["bench", "fleet", "--sites", "4", "--shards", "0"]) == 2
    assert "--shards must be 1..64, not 0" in capsys.readouterr().err
