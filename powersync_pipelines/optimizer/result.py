"""Plan results: per-interval actions, costs vs baseline and self-consumption, and the output JSON.

Action mapping (per interval, thresholds in ``ACTION_TOL_KW``; ``surplus``/``deficit`` are the house's
solar surplus / unmet load after curtailment and EV):

* ``CHARGE``  charge > tol and the charge exceeds the solar surplus by > tol (the grid charges the battery);
* ``EXPORT``  discharge > tol and the discharge exceeds the house deficit by > tol (battery energy is sold);
* ``IDLE``    |charge|, |discharge| <= tol and either the house imports > tol while the battery holds more
  than reserve + ``IDLE_SOC_MARGIN``, or the house exports surplus > tol while the battery has room below
  ``1 - IDLE_SOC_MARGIN``: the plan keeps the battery where self-consumption would have moved it;
* ``SELF_CONSUMPTION`` everything else: the battery follows the house (the device's own mode).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

ACTION_TOL_KW = 0.1
IDLE_SOC_MARGIN = 0.01
ACTION_NAMES = np.array(["CHARGE", "EXPORT", "IDLE", "SELF_CONSUMPTION"])
CHARGE, EXPORT, IDLE, SELF_CONSUMPTION = range(4)
INTERVAL_COLUMNS = [
    "action", "grid_import_kw", "grid_export_kw", "battery_charge_kw", "battery_discharge_kw", "curtail_kw",
    "soc", "solar_kw", "load_kw", "import_price", "export_price", "marginal_value",
]  # fmt: skip


def classify_actions(
    imp: np.ndarray,
    exp: np.ndarray,
    chg: np.ndarray,
    dis: np.ndarray,
    cur: np.ndarray,
    ev: np.ndarray,
    solar_kw: np.ndarray,
    load_kw: np.ndarray,
    soc_start: np.ndarray,
    reserve: float,
) -> np.ndarray:
    """Action codes (indices into ACTION_NAMES) per interval; see the module docstring."""
    tol = ACTION_TOL_KW
    house = load_kw + ev - (solar_kw - cur)  # >0: the house needs power
    surplus = np.maximum(-house, 0.0)
    deficit = np.maximum(house, 0.0)
    charging = (chg > tol) & (chg - surplus > tol)
    exporting = (dis > tol) & (dis - deficit > tol)
    holding = (chg <= tol) & (dis <= tol)
    idle = holding & (
        ((imp > tol) & (soc_start > reserve + IDLE_SOC_MARGIN)) | ((exp > tol) & (soc_start < 1.0 - IDLE_SOC_MARGIN))
    )
    return np.select([charging, exporting, idle], [CHARGE, EXPORT, IDLE], SELF_CONSUMPTION).astype(np.int8)


def energy_cost(imp: np.ndarray, exp: np.ndarray, import_price: np.ndarray, export_price: np.ndarray, dt_h: float) -> np.ndarray:
    """Per-interval energy cost in $ (import paid, export earned)."""
    return (imp * import_price - exp * export_price) * dt_h


@dataclass
class ScheduleResult:
    """A solved plan. ``intervals`` is on the problem's interval grid (always the full original length)."""

    status: str
    solver: str
    fallback_reason: str | None
    objective: float
    cost: float
    baseline_cost: float
    self_consumption_cost: float
    savings_24h: float
    savings_horizon: float
    solve_ms: float
    intervals: pd.DataFrame
    horizon: str = "full"
    terminal_value: float = 0.0
    lp_periods: int = 0
    repaired_intervals: int = 0
    extras: dict[str, Any] = field(default_factory=dict)

    def first_action(self) -> str:
        return str(self.intervals["action"].iloc[0])

    def to_dict(self) -> dict[str, Any]:
        """The ``powersync optimize`` output JSON (contract fields first; extra fields only added)."""
        df = self.intervals
        starts = df.index.strftime("%Y-%m-%dT%H:%M:%SZ")
        cols = {c: df[c].to_numpy() for c in INTERVAL_COLUMNS}
        rows = []
        for i, s in enumerate(starts):
            row: dict[str, Any] = {"start": s, "action": str(cols["action"][i])}
            for c in INTERVAL_COLUMNS[1:]:
                row[c] = round(float(cols[c][i]), 6)
            rows.append(row)
        d: dict[str, Any] = {
            "status": self.status,
            "solver": self.solver,
            "fallback_reason": self.fallback_reason,
            "objective": round(self.objective, 6),
            "cost": round(self.cost, 6),
            "baseline_cost": round(self.baseline_cost, 6),
            "self_consumption_cost": round(self.self_consumption_cost, 6),
            "savings_24h": round(self.savings_24h, 6),
            "savings_horizon": round(self.savings_horizon, 6),
            "solve_ms": round(self.solve_ms, 3),
            "horizon": self.horizon,
            "lp_periods": self.lp_periods,
            "terminal_value": round(self.terminal_value, 6),
            "repaired_intervals": self.repaired_intervals,
        }
        d.update({k: round(v, 6) if isinstance(v, float) else v for k, v in self.extras.items()})
        d["intervals"] = rows
        return d
