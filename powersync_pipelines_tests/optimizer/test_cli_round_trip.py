"""``powersync optimize`` end to end: problem JSON in, schedule JSON out, bad input → exit 2 and one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from powersync_pipelines.cli import main
from powersync_pipelines.paths import REPO_ROOT

from .test_problem_contract import contract_problem

CONTRACT_KEYS = {"status", "objective", "cost", "baseline_cost", "self_consumption_cost", "solve_ms", "intervals"}
INTERVAL_KEYS = {"start", "action", "grid_import_kw", "grid_export_kw", "battery_charge_kw", "battery_discharge_kw", "curtail_kw", "soc"}


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "powersync_pipelines.cli", "optimize", *args], capture_output=True, text=True, env=env, timeout=120)


def test_cli_writes_the_contract_schedule(tmp_path: Path):
    prob, out = tmp_path / "p.json", tmp_path / "s.json"
    prob.write_text(json.dumps(contract_problem()))
    r = _run("--problem", str(prob), "--out", str(out), "--horizon", "full")
    assert r.returncode == 0, r.stderr
    s = json.loads(out.read_text())
    assert s.keys() >= CONTRACT_KEYS
    assert s["status"] == "optimal" and len(s["intervals"]) == 576
    assert s["intervals"][0].keys() >= INTERVAL_KEYS
    assert s["intervals"][0]["start"] == "2024-10-11T14:00:00Z" and s["intervals"][-1]["start"] == "2024-10-13T13:55:00Z"
    assert {iv["action"] for iv in s["intervals"]} <= {"CHARGE", "EXPORT", "IDLE", "SELF_CONSUMPTION"}
    assert s["cost"] < s["baseline_cost"]


@pytest.mark.parametrize(("horizon", "solver"), [("tiered", "lp"), ("full", "greedy")])
def test_cli_horizon_and_solver_options(tmp_path: Path, horizon: str, solver: str):
    prob, out = tmp_path / "p.json", tmp_path / "s.json"
    prob.write_text(json.dumps(contract_problem()))
    assert main(["optimize", "--problem", str(prob), "--out", str(out), "--horizon", horizon, "--solver", solver]) == 0
    s = json.loads(out.read_text())
    assert len(s["intervals"]) == 576
    assert s["status"] == ("optimal" if solver == "lp" else "greedy")
    assert s["horizon"] == horizon


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (lambda d: d.__setitem__("load_kw", d["load_kw"][:-1]), "length mismatch"),
        (lambda d: d["battery"].__setitem__("charge_efficiency", 1.5), "charge_efficiency"),
    ],
)
def test_cli_rejects_invalid_problems_with_exit_2(tmp_path: Path, capsys, content, needle):
    d = contract_problem(48)
    content(d)
    prob = tmp_path / "p.json"
    prob.write_text(json.dumps(d))
    assert main(["optimize", "--problem", str(prob), "--out", str(tmp_path / "s.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "s.json").exists()


def test_cli_rejects_unreadable_json(tmp_path: Path, capsys):
    prob = tmp_path / "p.json"
    prob.write_text("{not json")
    assert main(["optimize", "--problem", str(prob), "--out", str(tmp_path / "s.json")]) == 2
    assert "not valid JSON" in capsys.readouterr().err
