"""`powersync demo` with ``POWERSYNC_DATABASE_URL`` and no other setting: the plan and the battery commands land
in PostgreSQL, Dagster's run is in the same database's ``runs`` table, and ``powersync sql`` reads them back."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import psycopg

from powersync_pipelines.paths import REPO_ROOT


def _powersync(home, url: str, *argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "POWERSYNC_SITES", "POWERSYNC_DUCKDB")}
    env["POWERSYNC_HOME"] = str(home)
    env["POWERSYNC_DATABASE_URL"] = url
    return subprocess.run([sys.executable, "-m", "powersync_pipelines.cli", *argv], capture_output=True,
                          text=True, env=env, cwd=REPO_ROOT, timeout=300)


def test_demo_stores_its_plan_commands_and_dagster_run_in_postgresql(tmp_path, pg_url):
    done = _powersync(tmp_path, pg_url, "demo")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "plan demo:20240212T2000Z: optimal via lp" in done.stdout
    assert "PostgreSQL history: postgresql://" in done.stdout
    run_id = re.search(r"Dagster run (\S+) stored", done.stdout).group(1)

    with psycopg.connect(pg_url) as con:
        plans = con.execute("SELECT plan_id, status FROM plans").fetchall()
        commands = con.execute("SELECT command, outcome FROM commands WHERE site_id = 'demo'").fetchall()
        schedule = con.execute("SELECT count(*) FROM schedule WHERE plan_id = 'demo:20240212T2000Z'").fetchone()[0]
        run = con.execute("SELECT status FROM runs WHERE run_id = %s", [run_id]).fetchone()
        events = con.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", [run_id]).fetchone()[0]
    assert plans == [("demo:20240212T2000Z", "optimal")]
    assert schedule == 576  # 48 h of 5-minute intervals
    assert any(outcome == "ok" for _, outcome in commands), commands
    assert run == ("SUCCESS",) and events > 0

    home = tmp_path / "dagster"
    yaml_text = (home / "dagster.yaml").read_text()
    assert "postgres_url:\n      env: POWERSYNC_DAGSTER_POSTGRES_URL" in yaml_text and "127.0.0.1" not in yaml_text
    assert not (home / "history" / "runs.db").exists()  # no SQLite run storage beside it

    back = _powersync(tmp_path, pg_url, "sql", "--json", "SELECT plan_id, round(cost, 2) AS cost FROM plans")
    assert back.returncode == 0, back.stderr
    rows = json.loads(back.stdout)
    assert [r["plan_id"] for r in rows] == ["demo:20240212T2000Z"] and isinstance(rows[0]["cost"], float)
