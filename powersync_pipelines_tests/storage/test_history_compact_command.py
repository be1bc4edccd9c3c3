"""``powersync history compact``: the JSON and table reports of the same compaction as the daily job, a dry run
that changes nothing, one-line errors for a bad retention age, and the daily ``history_retention`` job in a
real Dagster run with its metadata."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from powersync_pipelines.cli import main as cli_main
from powersync_pipelines.defs.resources import HistoryStoreResource
from powersync_pipelines.defs.retention import history_retention_daily, history_retention_job
from powersync_pipelines.storage import HistoryStore

from ..demo_peer import cli_json

BASE = pd.Timestamp("2024-06-01T00:00:00Z")


def _history(store: HistoryStore, plans: int = 10, horizon: int = 48) -> None:
    """``plans`` 4-hour plans, one every 5 minutes, each written with ``write_plan``."""
    for k in range(plans):
        t = BASE + pd.Timedelta(minutes=5 * k)
        idx = pd.date_range(t, periods=horizon, freq="5min", name="interval_start")
        rows = pd.DataFrame({"action": "IDLE", "battery_charge_kw": 0.0, "battery_discharge_kw": 0.0,
                             "grid_import_kw": 1.0 + k, "grid_export_kw": 0.0, "soc": 0.5, "import_price": 0.3,
                             "export_price": 0.05}, index=idx)
        store.write_plan("home", f"home:{k}", {"created_at": t, "plan_start": t, "status": "optimal",
                                               "solver": "lp"}, rows)


@pytest.fixture
def db(tmp_path) -> str:
    path = tmp_path / "h.duckdb"
    _history(HistoryStore(path))
    return str(path)


def test_json_report_and_a_second_run_that_finds_nothing(db, capsys):
    rc, dry = cli_json(capsys, "history", "compact", "--db", db, "--keep-days", "0", "--dry-run", "--format", "json")
    assert rc == 0 and dry["dry_run"] is True
    sched = {t["table"]: t for t in dry["tables"]}["schedule"]
    assert sched == {"table": "schedule", "before": 480, "deleted": 9 * 47, "after": 480 - 9 * 47,
                     "policy": sched["policy"]}
    assert HistoryStore(db).query("SELECT count(*) AS n FROM schedule").n[0] == 480  # the dry run changed nothing
    rc, done = cli_json(capsys, "history", "compact", "--db", db, "--keep-days", "0", "--format", "json")
    assert rc == 0 and {t["table"]: t["deleted"] for t in done["tables"]} == {
        "schedule": 423, "plans": 0, "forecasts": 0, "price_forecast_archive": 0}
    assert done["sites"] == [{"site_id": "home", "cutoff": "2024-06-01T00:45:00+00:00", "plans_examined": 9,
                              "rows_deleted": 423}]
    assert done["backend"] == "duckdb" and done["size_before_bytes"] > 0 and done["used_after_bytes"] > 0
    rc, again = cli_json(capsys, "history", "compact", "--db", db, "--keep-days", "0", "--format", "json")
    assert {t["table"]: t["after"] for t in again["tables"]}["schedule"] == 57 and again["batches"] == 1
    assert sum(t["deleted"] for t in again["tables"]) == 0


def test_the_table_names_every_table_and_its_policy(db, capsys, monkeypatch):
    monkeypatch.setenv("POWERSYNC_SCHEDULE_KEEP_DAYS", "0.01")  # 14.4 minutes: plans 0..6 are old
    assert cli_main(["history", "compact", "--db", db]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("(duckdb), keep_days 0.01")
    assert out[1].split() == ["table", "before", "deleted", "after", "policy"]
    assert out[2].split()[:4] == ["schedule", "480", str(7 * 47), str(480 - 7 * 47)]
    assert [line.split()[0] for line in out[3:6]] == ["plans", "forecasts", "price_forecast_archive"]
    assert out[5].split()[1:4] == ["0", "0", "0"] and "kept" in out[5]
    assert out[-1].startswith("size ")


@pytest.mark.parametrize("value", ["x", "-1", "nan", "inf"])
def test_a_bad_retention_age_is_one_line_and_deletes_nothing(db, capsys, value):
    assert cli_main(["history", "compact", "--db", db, f"--keep-days={value}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --keep-days must be")
    assert HistoryStore(db).query("SELECT count(*) AS n FROM schedule").n[0] == 480


def test_a_bad_setting_in_the_environment_names_the_variable(db, capsys, monkeypatch):
    monkeypatch.setenv("POWERSYNC_SCHEDULE_KEEP_DAYS", "two")
    assert cli_main(["history", "compact", "--db", db]) == 2
    assert capsys.readouterr().err.strip() == "error: POWERSYNC_SCHEDULE_KEEP_DAYS must be a number of days, got 'two'"


def test_the_daily_job_compacts_in_a_dagster_run_and_reports_per_table(db):
    assert history_retention_daily.cron_schedule == "40 3 * * *"
    with dg.instance_for_test() as instance:
        result = history_retention_job.execute_in_process(
            instance=instance, resources={"history": HistoryStoreResource(path=db)},
            run_config={"ops": {"compact_history_op": {"config": {"keep_days": 0.0}}}})
    assert result.success
    [event] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_OUTPUT]
    meta = {k: v.value for k, v in event.event_specific_data.metadata.items()}
    assert meta["schedule/rows_deleted"] == 423 and meta["schedule/rows_left"] == 57
    assert meta["plans/rows_left"] == 10 and meta["forecasts/rows_deleted"] == 0
    assert meta["price_forecast_archive/rows_deleted"] == 0 and meta["seconds"] >= 0
    assert meta["size_before_bytes"] > 0 and meta["backend"] == "duckdb"
    assert result.output_for_node("compact_history_op")["tables"][0]["deleted"] == 423
