"""The live planner, seen from the replay: give it the forecast, take back the first interval's decision.

``lp`` is the live system's own planner (``optimizer.Planner``: one HiGHS model kept across steps, re-solved
warm, tiered horizon by default, built from the same ``PlannerSettings`` as live); ``greedy`` is the optimizer's heuristic fallback solved afresh at each step. Both
return only what the battery is told for the next 5 minutes: (action code, charge kW, discharge kW, curtail kW).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd

from ..optimizer import LAST_RESORT_S, Planner, solve
from .battery import ACTION_CODES, BatterySpec

PLANNER_STRATEGIES = ("lp", "greedy")
# Per-solve last-resort wall clock for the warm Replanner: work limits bound every normal solve, so a
# backtest's decisions do not depend on how busy the machine is (the optimizer re-arms it per solve).
REPLANNER_TIME_LIMIT_S = LAST_RESORT_S


class StrategyPlanner(Protocol):
    solves: int  # optimizer calls made so far

    def first(self, t: pd.Timestamp, imp: np.ndarray, exp: np.ndarray, solar: np.ndarray, load: np.ndarray,
              soc: float) -> tuple[int, float, float, float]: ...


def first_interval(intervals: pd.DataFrame) -> tuple[int, float, float, float]:
    """The decision for the next 5 minutes from a plan's interval table."""
    row = intervals.iloc[0]
    return (ACTION_CODES[str(row["action"])], float(row["battery_charge_kw"]), float(row["battery_discharge_kw"]),
            float(row.get("curtail_kw", 0.0) or 0.0))


class LpPlanner:
    """Warm replans on one kept model: the live planner itself (``optimizer.Planner``)."""

    def __init__(self, spec: BatterySpec, n_periods: int, horizon: str = "tiered", terminal_value: str | float = "auto"):
        self.spec = spec
        self.solves = 0
        self.planner = Planner(spec.planner_settings(horizon=horizon, horizon_steps=n_periods,
                                                     terminal_value=terminal_value,
                                                     time_limit_s=REPLANNER_TIME_LIMIT_S))
        self.replanner = self.planner.replanner
        self.fallbacks = 0

    def first(self, t, imp, exp, solar, load, soc):
        self.solves += 1
        r = self.planner.plan(t, imp, exp, solar, load, soc)
        if r.status not in ("optimal", "near_optimal"):
            self.fallbacks += 1
        return (ACTION_CODES[r.action], float(r.battery_charge_kw[0]), float(r.battery_discharge_kw[0]),
                float(r.curtail_kw[0]))


class GreedyPlanner:
    """The heuristic, solved from scratch every ``every`` steps; in between the last plan is executed.

    Why not every step: the heuristic is a Python loop, about 40x the warm LP per replan (bench_optimizer), so a
    year of 5-minute greedy replans alone would take over an hour. Live, greedy is only the
    fallback when the LP fails; replanning it every 30 minutes is what such a fallback would do.
    """

    def __init__(self, spec: BatterySpec, n_periods: int, horizon: str = "tiered", terminal_value: str | float = "auto",
                 every: int = 6):
        self.spec, self.n, self.horizon, self.terminal_value = spec, n_periods, horizon, terminal_value
        self.every = max(1, int(every))
        self.solves = 0
        self._plan: tuple[np.ndarray, ...] | None = None
        self._age = 0

    def first(self, t, imp, exp, solar, load, soc):
        if self._plan is None or self._age + 1 >= self.every:
            self._plan, self._age = self._solve(t, imp, exp, solar, load, soc), 0
        else:
            self._age += 1
        a, c, d, cur = self._plan
        k = self._age
        return int(a[k]), float(c[k]), float(d[k]), float(cur[k])

    def _solve(self, t, imp, exp, solar, load, soc) -> tuple[np.ndarray, ...]:
        self.solves += 1
        problem = self.spec.planner_settings(terminal_value=self.terminal_value).problem(t, imp, exp, solar, load, soc)
        iv = solve(problem, horizon=self.horizon, solver="greedy").intervals.iloc[: self.every]
        codes = iv["action"].map(ACTION_CODES).to_numpy(dtype=int)
        return (codes, iv["battery_charge_kw"].to_numpy(float), iv["battery_discharge_kw"].to_numpy(float),
                iv["curtail_kw"].to_numpy(float) if "curtail_kw" in iv else np.zeros(len(iv)))


def make_planner(name: str, spec: BatterySpec, n_periods: int, horizon: str, terminal_value: str | float = "auto",
                 greedy_every: int = 6) -> StrategyPlanner:
    """The replay's planner for strategy ``name`` (``lp`` or ``greedy``)."""
    if name == "greedy":
        return GreedyPlanner(spec, n_periods, horizon=horizon, terminal_value=terminal_value, every=greedy_every)
    return LpPlanner(spec, n_periods, horizon=horizon, terminal_value=terminal_value)


def perfect_foresight_plan(spec: BatterySpec, start: pd.Timestamp, imp: np.ndarray, exp: np.ndarray,
                           solar: np.ndarray, load: np.ndarray, soc: float,
                           terminal_value: str | float = "auto") -> pd.DataFrame:
    """One full-resolution LP over a whole chunk with the real data (the bound no strategy can beat)."""
    problem = spec.planner_settings(terminal_value=terminal_value).problem(start, imp, exp, solar, load, soc)
    return solve(problem, horizon="full", solver="lp").intervals
