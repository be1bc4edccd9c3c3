"""The live planner, seen from the replay: give it the forecast, take back the first interval's decision.

``lp`` is the live system's own warm re-solve (``optimizer.Replanner``: one HiGHS model kept across steps,
tiered horizon by default); ``greedy`` is the optimizer's heuristic fallback solved afresh at each step. Both
return only what the battery is told for the next 5 minutes: (action code, charge kW, discharge kW, curtail kW).
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import pandas as pd

from .battery import ACTION_CODES, BatterySpec

PLANNER_STRATEGIES = ("lp", "greedy")
# Per-solve guard for the warm Replanner. (The optimizer re-arms HiGHS's time limit before every solve:
# HiGHS itself counts it against a model's lifetime, which once turned long backtests into greedy runs.)
REPLANNER_TIME_LIMIT_S = 5.0


class Planner(Protocol):
    solves: int  # optimizer calls made so far

    def first(self, t: pd.Timestamp, imp: np.ndarray, exp: np.ndarray, solar: np.ndarray, load: np.ndarray,
              soc: float) -> tuple[int, float, float, float]: ...


def battery_params(spec: BatterySpec, soc: float):
    from ..optimizer import BatteryParams

    return BatteryParams(
        capacity_kwh=spec.capacity_kwh, soc_initial=min(max(soc, 0.0), 1.0), max_charge_kw=spec.max_charge_kw,
        max_discharge_kw=spec.max_discharge_kw, charge_efficiency=spec.charge_efficiency,
        discharge_efficiency=spec.discharge_efficiency, reserve=spec.reserve,
    )


def _limit(v: float) -> float | None:
    return None if math.isinf(v) else v


def first_interval(intervals: pd.DataFrame) -> tuple[int, float, float, float]:
    """The decision for the next 5 minutes from a plan's interval table."""
    row = intervals.iloc[0]
    return (ACTION_CODES[str(row["action"])], float(row["battery_charge_kw"]), float(row["battery_discharge_kw"]),
            float(row.get("curtail_kw", 0.0) or 0.0))


class LpPlanner:
    """Warm replans on one kept model (the live path)."""

    def __init__(self, spec: BatterySpec, n_periods: int, horizon: str = "tiered", terminal_value: str | float = "auto"):
        from ..optimizer import Replanner

        self.spec = spec
        self.solves = 0
        self.replanner = Replanner(
            battery_params(spec, spec.soc_initial), n_periods, horizon=horizon,
            export_limit_kw=_limit(spec.export_limit_kw), import_limit_kw=_limit(spec.import_limit_kw),
            wear_cost_per_kwh=spec.wear_cost_per_kwh, terminal_value=terminal_value,
            time_limit_s=REPLANNER_TIME_LIMIT_S,
        )
        self.fallbacks = 0

    def first(self, t, imp, exp, solar, load, soc):
        self.solves += 1
        r = self.replanner.solve(t, imp, exp, solar, load, min(max(soc, 0.0), 1.0))
        if r.status != "optimal":
            self.fallbacks += 1
        return (ACTION_CODES[r.action], float(r.battery_charge_kw[0]), float(r.battery_discharge_kw[0]),
                float(r.curtail_kw[0]))


class ScenarioPlanner(LpPlanner):
    """Expected-value replans over K price scenarios with a shared first interval
    (``optimizer.scenarios.ScenarioReplanner``); a step whose forecast has no scenarios (too little history
    yet) is planned on the single path by the warm ``Replanner``."""

    def __init__(self, spec: BatterySpec, n_periods: int, n_scenarios: int, horizon: str = "tiered",
                 terminal_value: str | float = "auto"):
        from ..optimizer.scenarios import ScenarioReplanner

        super().__init__(spec, n_periods, horizon=horizon, terminal_value=terminal_value)
        self.scenario = ScenarioReplanner(
            battery_params(spec, spec.soc_initial), n_periods, n_scenarios,
            export_limit_kw=_limit(spec.export_limit_kw), import_limit_kw=_limit(spec.import_limit_kw),
            wear_cost_per_kwh=spec.wear_cost_per_kwh, terminal_value=terminal_value,
            time_limit_s=REPLANNER_TIME_LIMIT_S,
        )

    def first_scenarios(self, t, sc, solar, load, soc):
        """The first interval's decision over a ``ScenarioSet``; a failed solve plans on their weighted mean."""
        self.solves += 1
        d = self.scenario.solve(t, sc.import_price, sc.export_price, sc.weights, solar, load,
                                min(max(soc, 0.0), 1.0), sc.split_at)
        if d.status != "optimal":
            self.fallbacks += 1
            self.solves -= 1
            w = np.full(len(sc.import_price), 1 / len(sc.import_price)) if sc.weights is None else sc.weights
            return self.first(t, w @ sc.import_price, w @ sc.export_price, solar, load, soc)
        return ACTION_CODES[d.action], d.battery_charge_kw, d.battery_discharge_kw, d.curtail_kw


class SdpPlanner(LpPlanner):
    """Stochastic DP over the forecast's price chain (``optimizer.sdp``): solved every ``every`` steps or when
    the chain is refitted, each step decided at the real current price from the kept value functions; a
    step without a chain (too little history yet) is planned on the single path by the warm ``Replanner``.
    """

    def __init__(self, spec: BatterySpec, n_periods: int, horizon: str = "tiered",
                 terminal_value: str | float = "auto", every: int = 6):
        from ..optimizer.sdp import SdpPolicy

        super().__init__(spec, n_periods, horizon=horizon, terminal_value=terminal_value)
        self.policy = SdpPolicy(battery_params(spec, spec.soc_initial), export_limit_kw=_limit(spec.export_limit_kw),
                                import_limit_kw=_limit(spec.import_limit_kw), wear_cost_per_kwh=spec.wear_cost_per_kwh)
        self.every = max(1, int(every))
        self._key: object = None
        self._solved_at: pd.Timestamp | None = None

    def first_chain(self, t, chain, solar, load, soc):
        from ..optimizer.sdp import SdpInputs, chain_terminal_value

        net = np.asarray(load, float) - np.asarray(solar, float)
        # the offset into the kept solve counts real steps (steps planned by the LP in between included)
        age = None if self._solved_at is None else int(round((t - self._solved_at) / pd.Timedelta(minutes=5)))
        if age is None or chain.key != self._key or not 0 <= age < self.every:
            self.solves += 1
            tv = chain_terminal_value(chain, self.policy.b)
            self.policy.solve(SdpInputs(net, chain.import_price, chain.export_price, chain.trans, tv))
            self._key, self._solved_at, age = chain.key, t, 0
        d = self.policy.decide(age, chain.current_bin, chain.current_import, chain.current_export,
                               float(net[0]), soc)
        return ACTION_CODES[d.action], d.battery_charge_kw, d.battery_discharge_kw, 0.0


class GreedyPlanner:
    """The heuristic, solved from scratch every ``every`` steps; in between the last plan is executed.

    Why not every step: the heuristic is a Python loop (~40 ms for 576 intervals, 40x the
    warm LP), so a year of 5-minute greedy replans alone would take over an hour. Live, greedy is only the
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
        from ..optimizer import OptimizationProblem, solve

        self.solves += 1
        spec = self.spec
        problem = OptimizationProblem(
            start=t, import_price=imp, export_price=exp, solar_kw=solar, load_kw=load,
            battery=battery_params(spec, soc), export_limit_kw=_limit(spec.export_limit_kw),
            import_limit_kw=_limit(spec.import_limit_kw), wear_cost_per_kwh=spec.wear_cost_per_kwh,
            terminal_value=self.terminal_value,
        )
        iv = solve(problem, horizon=self.horizon, solver="greedy").intervals.iloc[: self.every]
        codes = iv["action"].map(ACTION_CODES).to_numpy(dtype=int)
        return (codes, iv["battery_charge_kw"].to_numpy(float), iv["battery_discharge_kw"].to_numpy(float),
                iv["curtail_kw"].to_numpy(float) if "curtail_kw" in iv else np.zeros(len(iv)))


def make_planner(name: str, spec: BatterySpec, n_periods: int, horizon: str, terminal_value: str | float = "auto",
                 greedy_every: int = 6, n_scenarios: int = 0, price_chain: bool = False) -> Planner:
    """``n_scenarios`` > 0 (a forecast that issues scenarios): the ``lp`` strategy plans over them;
    ``price_chain`` (a forecast that issues a price chain): the ``lp`` strategy plans by stochastic DP."""
    if name == "lp" and price_chain:
        return SdpPlanner(spec, n_periods, horizon=horizon, terminal_value=terminal_value)
    if name == "lp" and n_scenarios > 0:
        return ScenarioPlanner(spec, n_periods, n_scenarios, horizon=horizon, terminal_value=terminal_value)
    if name == "greedy":
        return GreedyPlanner(spec, n_periods, horizon=horizon, terminal_value=terminal_value, every=greedy_every)
    return LpPlanner(spec, n_periods, horizon=horizon, terminal_value=terminal_value)


def perfect_foresight_plan(spec: BatterySpec, start: pd.Timestamp, imp: np.ndarray, exp: np.ndarray,
                           solar: np.ndarray, load: np.ndarray, soc: float,
                           terminal_value: str | float = "auto") -> pd.DataFrame:
    """One full-resolution LP over a whole chunk with the real data (the bound no strategy can beat)."""
    from ..optimizer import OptimizationProblem, solve

    problem = OptimizationProblem(
        start=start, import_price=imp, export_price=exp, solar_kw=solar, load_kw=load,
        battery=battery_params(spec, soc), export_limit_kw=_limit(spec.export_limit_kw),
        import_limit_kw=_limit(spec.import_limit_kw), wear_cost_per_kwh=spec.wear_cost_per_kwh,
        terminal_value=terminal_value,
    )
    return solve(problem, horizon="full", solver="lp").intervals
