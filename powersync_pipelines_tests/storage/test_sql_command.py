"""``powersync sql`` answers the README's queries on either history and turns bad SQL into one line."""

from __future__ import annotations

import pandas as pd
import pytest

from powersync_pipelines.cli import main

from ..demo_peer import cli_json


def _seed(store) -> None:
    idx = pd.date_range("2024-02-12T20:00Z", periods=2, freq="5min", name="interval_start")
    rows = pd.DataFrame({"action": ["CHARGE", "IDLE"], "battery_charge_kw": [5.0, 0], "battery_discharge_kw": [0, 0],
                         "grid_import_kw": [6.0, 1], "grid_export_kw": [0, 0], "soc": [0.52, 0.52],
                         "import_price": [0.1, 0.2], "export_price": [0.0, 0.1]}, index=idx)
    store.write_plan("demo", "demo:1", {"created_at": idx[0], "plan_start": idx[0], "status": "optimal",
                                        "solver": "lp", "cost": 1.23456, "baseline_cost": 2.5}, rows)


README_PLANS = ("SELECT plan_id, status, solver, round(cost, 2) AS cost, round(baseline_cost, 2) AS baseline, "
                "round(baseline_cost - cost, 2) AS saving FROM plans ORDER BY created_at DESC LIMIT 5")


def test_the_readme_plan_query_answers_the_same_on_both_backends(any_store, capsys):
    _seed(any_store)
    rc, rows = cli_json(capsys, "sql", "--db", any_store.location,
                        "--json", README_PLANS)
    assert rc == 0
    assert rows == [{"plan_id": "demo:1", "status": "optimal", "solver": "lp", "cost": 1.23, "baseline": 2.5,
                     "saving": 1.27}]


def test_sql_from_a_file_prints_a_table(store, tmp_path, capsys):
    _seed(store)
    q = tmp_path / "q.sql"
    q.write_text("SELECT action, count(*) AS n FROM schedule GROUP BY action ORDER BY action")
    assert main(["sql", "--db", store.location, "--file", str(q)]) == 0
    out = capsys.readouterr().out.split("\n")
    assert out[0].split() == ["action", "n"] and out[1].split() == ["CHARGE", "1"]


@pytest.mark.parametrize("argv", [["SELECT * FROM no_such_table"], []])
def test_bad_sql_or_no_sql_is_one_line(store, argv, capsys):
    rc = main(["sql", "--db", store.location, *argv])
    err = capsys.readouterr().err.strip()
    assert rc in (1, 2) and err.startswith("error:") and "\n" not in err and "Traceback" not in err


def test_an_unreachable_postgres_is_one_line_without_the_password(capsys):
    rc = main(["sql", "--db", "postgresql://ps:s3cret@127.0.0.1:1/none", "SELECT 1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "cannot connect to PostgreSQL at postgresql://ps:***@127.0.0.1:1/none" in err
    assert "s3cret" not in err and "\n" not in err
