"""The problem JSON contract: round trip, and invalid problems rejected with a one-line reason."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from powersync_pipelines.optimizer import OptimizationProblem, ProblemError

from .problems import realistic_problem


def contract_problem(n: int = 576) -> dict:
    hours = [(i * 5 / 60) % 24 for i in range(n)]
    imp = [round(0.25 + 0.2 * math.exp(-(((h - 18) / 2) ** 2)) - 0.12 * math.exp(-(((h - 12) / 3) ** 2)), 5) for h in hours]
    return {
        "start": "2024-10-11T14:00:00Z",
        "interval_minutes": 5,
        "import_price": imp,
        "export_price": [round(x - 0.12, 5) for x in imp],
        "solar_kw": [round(max(0.0, 5 * math.sin((h - 6) / 12 * math.pi)), 4) for h in hours],
        "load_kw": [round(0.6 + 1.5 * math.exp(-(((h - 19) / 2) ** 2)), 4) for h in hours],
        "battery": {"capacity_kwh": 13.5, "soc_initial": 0.5, "max_charge_kw": 5.0, "max_discharge_kw": 5.0,
                    "charge_efficiency": 0.95, "discharge_efficiency": 0.95, "reserve": 0.1},
        "export_limit_kw": 5.0,
        "import_limit_kw": 15.0,
        "wear_cost_per_kwh": 0,
        "terminal_value": "none",
    }  # fmt: skip


def test_problem_json_round_trips():
    p = realistic_problem(5, n=96)
    q = OptimizationProblem.from_dict(p.to_dict())
    assert q.to_dict() == p.to_dict()
    assert q.start == p.start and str(q.start.tz) == "UTC"
    np.testing.assert_array_equal(q.load_kw, p.load_kw)


def test_missing_limits_mean_unlimited_and_terminal_value_defaults_to_auto():
    d = contract_problem(48)
    for k in ("export_limit_kw", "import_limit_kw", "wear_cost_per_kwh", "terminal_value"):
        d.pop(k)
    p = OptimizationProblem.from_dict(d)
    assert math.isinf(p.export_limit_kw) and math.isinf(p.import_limit_kw)
    assert p.terminal_value == "auto" and p.wear_cost_per_kwh > 0


def _broken(mutate) -> dict:
    d = copy.deepcopy(contract_problem(48))
    mutate(d)
    return d


INVALID = {
    "length mismatch": (lambda d: d.__setitem__("load_kw", d["load_kw"][:-1]), "length mismatch"),
    "NaN price": (lambda d: d["import_price"].__setitem__(3, float("nan")), "non-finite"),
    "null solar": (lambda d: d["solar_kw"].__setitem__(3, None), "null"),
    "negative capacity": (lambda d: d["battery"].__setitem__("capacity_kwh", -1.0), "capacity_kwh"),
    "efficiency above 1": (lambda d: d["battery"].__setitem__("charge_efficiency", 1.05), "charge_efficiency"),
    "SOC above 1": (lambda d: d["battery"].__setitem__("soc_initial", 1.2), "soc_initial"),
    "SOC below 0": (lambda d: d["battery"].__setitem__("soc_initial", -0.1), "soc_initial"),
    "reserve above 1": (lambda d: d["battery"].__setitem__("reserve", 2.0), "reserve"),
    "negative load": (lambda d: d["load_kw"].__setitem__(0, -1.0), "load_kw"),
    "naive start": (lambda d: d.__setitem__("start", "2024-10-11T14:00:00"), "time zone"),
    "start off grid": (lambda d: d.__setitem__("start", "2024-10-11T14:02:00Z"), "grid"),
    "bad terminal value": (lambda d: d.__setitem__("terminal_value", "max"), "terminal_value"),
    "negative export limit": (lambda d: d.__setitem__("export_limit_kw", -5), "export_limit_kw"),
    "missing battery": (lambda d: d.pop("battery"), "battery"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_problems_are_rejected_with_a_one_line_reason(case):
    mutate, needle = INVALID[case]
    with pytest.raises(ProblemError) as e:
        OptimizationProblem.from_dict(_broken(mutate))
    msg = str(e.value)
    assert needle in msg and "\n" not in msg
