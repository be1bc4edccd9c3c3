"""``powersync optimize``: a wrongly typed field is one line and exit code 2 (never a traceback, never a bool
read as 1.0), and an EV target the limits cannot reach is reported as such with the best achievable energy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from powersync_pipelines.cli import main
from powersync_pipelines.optimizer import OptimizationProblem, solve

N = 24


def problem(**extra: object) -> dict:
    return {"start": "2024-01-01T00:00:00Z", "import_price": [0.3] * N, "export_price": [0.05] * N,
            "solar_kw": [0.0] * N, "load_kw": [0.5] * N,
            "battery": {"capacity_kwh": 10, "soc_initial": 0.5, "max_charge_kw": 5, "max_discharge_kw": 5}, **extra}


def optimize(capsys, tmp_path: Path, body: dict) -> tuple[int, str, Path]:
    p, out = tmp_path / "p.json", tmp_path / "s.json"
    p.write_text(json.dumps(body))
    code = main(["optimize", "--problem", str(p), "--out", str(out)])
    return code, capsys.readouterr().err, out


@pytest.mark.parametrize(("extra", "needle"), [
    ({"terminal_value": [1, 2]}, "terminal_value must be 'auto', 'none' or a number >= 0, got [1, 2]"),
    ({"soc_final": "abc"}, "soc_final must be a fraction in [0, 1] or null, got 'abc'"),
    ({"wear_cost_per_kwh": True}, "wear_cost_per_kwh must be a number >= 0, got True"),
    ({"battery": {"capacity_kwh": True, "soc_initial": 0.5, "max_charge_kw": 5, "max_discharge_kw": 5}},
     "battery.capacity_kwh must be a number, got True"),
    ({"import_price": [0.3] * 5 + ["0.3"] + [0.3] * (N - 6)}, "import_price must hold numbers; index 5 is '0.3'"),
    ({"ev": [1]}, "ev needs energy_kwh, deadline (ISO UTC) and max_kw"),
    ({"ev": {"energy_kwh": 5, "deadline": "2024-01-01T01:00:00", "max_kw": 7}}, "ev.deadline must carry a time zone"),
    ({"demand_charge": {"window": "x", "price_per_kw": 1}}, "demand_charge.window must be an array of true/false"),
])
def test_wrongly_typed_field_is_one_line_and_exit_2(capsys, tmp_path, extra, needle):
    code, err, out = optimize(capsys, tmp_path, problem(**extra))
    assert code == 2 and not out.exists()
    assert len(err.strip().splitlines()) == 1 and needle in err, err


def test_unreachable_ev_target_is_reported_with_the_best_achievable_energy(capsys, tmp_path):
    ev = {"energy_kwh": 1e9, "deadline": "2024-01-01T01:00:00Z", "max_kw": 7}
    code, _, out = optimize(capsys, tmp_path, problem(ev=ev))
    assert code == 0
    s = json.loads(out.read_text())
    assert s["status"] == "ev_target_infeasible" and "cannot be met" in s["fallback_reason"]
    assert s["ev_target_met"] is False and s["ev_target_kwh"] == 1e9
    assert s["ev_energy_kwh"] == pytest.approx(7.0)  # 7 kW for the hour before the deadline: the most possible
    assert s["ev_shortfall_kwh"] == pytest.approx(1e9 - 7.0)


def test_reachable_ev_target_stays_optimal_and_says_met():
    p = OptimizationProblem.from_dict(problem(ev={"energy_kwh": 5, "deadline": "2024-01-01T01:00:00Z", "max_kw": 7}))
    r = solve(p)
    assert r.status == "optimal" and r.extras["ev_target_met"] is True
    assert r.extras["ev_energy_kwh"] == pytest.approx(5.0, abs=1e-3) and r.extras["ev_shortfall_kwh"] < 1e-3
