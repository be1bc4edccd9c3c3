"""The battery schedule optimizer: an exact HiGHS LP with a tiered horizon, burn repair, fallbacks and savings.

Pure domain code (no Dagster). ``solve()`` plans one problem; ``Replanner`` re-solves warm every interval
for live replans and the backtest.
"""

from .planner import Planner, PlannerSettings
from .problem import BatteryParams, DemandCharge, EvRequirement, OptimizationProblem, ProblemError
from .replanner import Replanner, ReplanResult
from .result import ACTION_TOL_KW, ScheduleResult
from .solve import self_consumption_schedule, solve

__all__ = [
    "ACTION_TOL_KW",
    "BatteryParams",
    "DemandCharge",
    "EvRequirement",
    "OptimizationProblem",
    "Planner",
    "PlannerSettings",
    "ProblemError",
    "ReplanResult",
    "Replanner",
    "ScheduleResult",
    "self_consumption_schedule",
    "solve",
]
