"""The one planner: a site's battery and options -> a schedule, re-solved warm every 5 minutes.

The live planning cycle, ``sync_now``, the Dagster assets and the backtest all plan through :class:`Planner`,
built from :class:`PlannerSettings`, so what the backtest measures is what runs live: the same tiered horizon,
terminal value, limits and warm ``Replanner``. ``PlannerSettings.from_site`` is the one place that reads a
site's battery section for planning, and :meth:`PlannerSettings.problem` the one place an
``OptimizationProblem`` is assembled from it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..timegrid import HORIZON_STEPS, INTERVAL_MINUTES
from .highs_util import LAST_RESORT_S
from .problem import DEFAULT_WEAR_COST_PER_KWH, BatteryParams, DemandCharge, OptimizationProblem
from .replanner import Replanner, ReplanResult
from .result import ScheduleResult
from .solve import self_consumption_schedule

if TYPE_CHECKING:
    from ..config import SiteConfig

DEFAULT_HORIZON = "tiered"  # fine near now, coarse later (SPEC section 5); see optimizer/grid.py


def _finite_or_none(v: float | None) -> float | None:
    return None if v is None or math.isinf(v) else float(v)


@dataclass(frozen=True)
class PlannerSettings:
    """Everything the planner needs besides the forecasts and the SOC (ratings in kW/kWh, SOC fractions)."""

    capacity_kwh: float
    max_charge_kw: float
    max_discharge_kw: float
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    reserve: float = 0.1
    export_limit_kw: float | None = None  # None: no limit
    import_limit_kw: float | None = None
    wear_cost_per_kwh: float = DEFAULT_WEAR_COST_PER_KWH
    terminal_value: str | float = "auto"
    cost_function: str = "cost"
    horizon: str = DEFAULT_HORIZON
    horizon_steps: int = HORIZON_STEPS
    interval_minutes: int = INTERVAL_MINUTES
    # Last resort only: HiGHS work limits bound every normal solve, so a plan does not depend on machine load.
    time_limit_s: float = LAST_RESORT_S

    def __post_init__(self) -> None:
        object.__setattr__(self, "export_limit_kw", _finite_or_none(self.export_limit_kw))
        object.__setattr__(self, "import_limit_kw", _finite_or_none(self.import_limit_kw))

    @classmethod
    def from_site(cls, site: SiteConfig, **overrides: Any) -> PlannerSettings:
        """The planner for a configured site: its battery ratings, the higher of its two reserves, its grid
        limits, wear cost and objective (``cost_function``); ``overrides`` change any other field (horizon, terminal value, ...)."""
        b = site.battery
        fields: dict[str, Any] = dict(
            capacity_kwh=b.capacity_kwh, max_charge_kw=b.max_charge_kw, max_discharge_kw=b.max_discharge_kw,
            charge_efficiency=b.charge_efficiency, discharge_efficiency=b.discharge_efficiency,
            reserve=b.reserve_fraction, export_limit_kw=site.limits.export_kw, import_limit_kw=site.limits.import_kw,
            wear_cost_per_kwh=b.wear_cost_per_kwh, cost_function=site.cost_function,
        )
        return cls(**{**fields, **overrides})

    def with_options(self, **changes: Any) -> PlannerSettings:
        return replace(self, **changes)

    def battery(self, soc: float) -> BatteryParams:
        """The battery at SOC ``soc`` (clipped into [0, 1]: a reading of 100.2 % is full)."""
        return BatteryParams(
            capacity_kwh=self.capacity_kwh, soc_initial=float(np.clip(soc, 0.0, 1.0)),
            max_charge_kw=self.max_charge_kw, max_discharge_kw=self.max_discharge_kw,
            charge_efficiency=self.charge_efficiency, discharge_efficiency=self.discharge_efficiency,
            reserve=self.reserve,
        )

    def scalar_options(self) -> dict[str, Any]:
        """The problem's scalar options (``OptimizationProblem`` keywords, also what ``Replanner`` takes)."""
        return {"interval_minutes": self.interval_minutes, "export_limit_kw": self.export_limit_kw,
                "import_limit_kw": self.import_limit_kw, "wear_cost_per_kwh": self.wear_cost_per_kwh,
                "terminal_value": self.terminal_value, "cost_function": self.cost_function}

    def problem(self, start: pd.Timestamp, import_price: Any, export_price: Any, solar_kw: Any, load_kw: Any,
                soc: float, **extras: Any) -> OptimizationProblem:
        """The optimisation problem for these forecasts (``extras``: EV requirement, demand charge, soc_final)."""
        return OptimizationProblem(
            start=start, import_price=np.asarray(import_price, dtype=float),
            export_price=np.asarray(export_price, dtype=float), solar_kw=np.asarray(solar_kw, dtype=float),
            load_kw=np.asarray(load_kw, dtype=float), battery=self.battery(soc), **self.scalar_options(), **extras,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Planner:
    """Warm replans for one battery: the model is built once and re-solved from its last basis every call."""

    def __init__(self, settings: PlannerSettings, demand_rows: bool = False) -> None:
        self.settings = settings
        self.replanner = self._replanner(demand_rows)

    def _replanner(self, demand_rows: bool) -> Replanner:
        s = self.settings
        return Replanner(s.battery(0.5), s.horizon_steps, horizon=s.horizon, demand_rows=demand_rows,
                         time_limit_s=s.time_limit_s, **s.scalar_options())

    @property
    def replans(self) -> int:
        return self.replanner.replans

    def plan(self, start: pd.Timestamp, import_price: Any, export_price: Any, solar_kw: Any, load_kw: Any,
             soc: float, demand_charge: DemandCharge | None = None) -> ReplanResult:
        """The plan from ``start`` (its first interval is the one to carry out now); ``demand_charge`` (a site
        with a demand tariff) adds the window's peak. The first plan with one rebuilds the model with demand
        rows (one cold solve); after that every replan, with or without a window ahead, stays warm."""
        if demand_charge is not None and not self.replanner.demand_rows:
            self.replanner = self._replanner(True)
        return self.replanner.solve(start, np.asarray(import_price, dtype=float),
                                    np.asarray(export_price, dtype=float), np.asarray(solar_kw, dtype=float),
                                    np.asarray(load_kw, dtype=float), float(np.clip(soc, 0.0, 1.0)),
                                    demand_charge=demand_charge)

    def follow_house(self, start: pd.Timestamp, import_price: Any, export_price: Any, solar_kw: Any, load_kw: Any,
                     soc: float, reason: str) -> ScheduleResult:
        """Plain self-consumption (no grid charging, no battery exports): the plan for inputs that must not be
        traded on, e.g. stale prices; reported as ``fallback_self_consumption`` with ``reason``."""
        problem = self.settings.problem(start, import_price, export_price, solar_kw, load_kw, soc)
        return self_consumption_schedule(problem, reason, self.settings.horizon)
