"""Physical invariants of a plan's interval table (the ``plan_feasible`` asset check and the tests)."""

from __future__ import annotations

import pandas as pd

from .planner import PlannerSettings


def plan_violations(intervals: pd.DataFrame, settings: PlannerSettings, soc_initial: float,
                    tol: float = 1e-4) -> list[str]:
    """Physical invariants of a stored plan; an empty list means feasible.

    Energy balance per interval, SOC within [min(reserve, start SOC), 1] (the plan may ramp back up to a
    reserve it starts below), power and grid limits, and no simultaneous charge and discharge.
    """
    b, df = settings, intervals
    out: list[str] = []
    curtail = df["curtail_kw"].fillna(0.0) if "curtail_kw" in df else 0.0
    balance = (df["grid_import_kw"] - df["grid_export_kw"] + df["battery_discharge_kw"] - df["battery_charge_kw"]
               + df["solar_kw"] - curtail - df["load_kw"])
    if (balance.abs() > 1e-3).any():
        out.append(f"energy balance off by up to {balance.abs().max():.4f} kW")
    floor = min(b.reserve, soc_initial)
    if (df["soc"] < floor - tol).any() or (df["soc"] > 1 + tol).any():
        out.append(f"SOC outside [{floor:.3f}, 1]: min {df['soc'].min():.4f}, max {df['soc'].max():.4f}")
    if (df["battery_charge_kw"] > b.max_charge_kw + tol).any():
        out.append(f"charge above {b.max_charge_kw} kW")
    if (df["battery_discharge_kw"] > b.max_discharge_kw + tol).any():
        out.append(f"discharge above {b.max_discharge_kw} kW")
    if b.export_limit_kw is not None and (df["grid_export_kw"] > b.export_limit_kw + tol).any():
        out.append(f"export above {b.export_limit_kw} kW")
    if b.import_limit_kw is not None and (df["grid_import_kw"] > b.import_limit_kw + tol).any():
        out.append(f"import above {b.import_limit_kw} kW")
    both = (df["battery_charge_kw"] > tol) & (df["battery_discharge_kw"] > tol)
    if both.any():
        out.append(f"{int(both.sum())} intervals charge and discharge at once")
    return out
