"""The battery and site meter as the backtest applies a plan's first interval to the real world.

Actions (SPEC §5): ``CHARGE`` and ``EXPORT`` hold the plan's kW (clamped to limits, SOC and the grid
connection); ``IDLE`` holds SOC; ``SELF_CONSUMPTION`` follows the *real* load and solar of the moment (the
battery's own control mode), not the plan's kW. Energy bookkeeping: charging ``c`` kW for ``dt`` h stores
``c·dt·ηc`` kWh, discharging ``d`` kW draws ``d·dt/ηd`` kWh; the difference is the loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..config import SiteConfig
from ..optimizer.planner import PlannerSettings
from ..timegrid import DT_H

ACTION_CODES = {"IDLE": 0, "CHARGE": 1, "EXPORT": 2, "SELF_CONSUMPTION": 3}
ACTION_NAMES = {v: k for k, v in ACTION_CODES.items()}
NO_BATTERY = -1  # the "none" strategy's action code (no battery at all)


@dataclass(frozen=True)
class BatterySpec:
    """Ratings and limits. ``reserve`` is the SOC floor every strategy respects (the product's reserve)."""

    capacity_kwh: float
    max_charge_kw: float
    max_discharge_kw: float
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    reserve: float = 0.1
    soc_initial: float = 0.5
    export_limit_kw: float = math.inf
    import_limit_kw: float = math.inf
    wear_cost_per_kwh: float = 0.0
    soc_max: float = 1.0

    @classmethod
    def from_site(cls, site: SiteConfig) -> BatterySpec:
        """The site's battery as the live planner sees it (``PlannerSettings.from_site``), starting at its
        configured initial SOC."""
        s = PlannerSettings.from_site(site)
        return cls(
            capacity_kwh=s.capacity_kwh, max_charge_kw=s.max_charge_kw, max_discharge_kw=s.max_discharge_kw,
            charge_efficiency=s.charge_efficiency, discharge_efficiency=s.discharge_efficiency, reserve=s.reserve,
            soc_initial=site.battery.initial_soc_pct / 100.0,
            export_limit_kw=math.inf if s.export_limit_kw is None else s.export_limit_kw,
            import_limit_kw=math.inf if s.import_limit_kw is None else s.import_limit_kw,
            wear_cost_per_kwh=s.wear_cost_per_kwh,
        )

    def planner_settings(self, **options: Any) -> PlannerSettings:
        """The planner for this battery (``options``: horizon, terminal value, ... of ``PlannerSettings``)."""
        return PlannerSettings(
            capacity_kwh=self.capacity_kwh, max_charge_kw=self.max_charge_kw, max_discharge_kw=self.max_discharge_kw,
            charge_efficiency=self.charge_efficiency, discharge_efficiency=self.discharge_efficiency,
            reserve=self.reserve, export_limit_kw=self.export_limit_kw, import_limit_kw=self.import_limit_kw,
            wear_cost_per_kwh=self.wear_cost_per_kwh, **options,
        )


@dataclass
class StepOutcome:
    """One interval as it really happened (kW means over the interval, SOC at its end)."""

    soc: float
    charge_kw: float
    discharge_kw: float
    import_kw: float
    export_kw: float
    curtail_kw: float


def apply_step(spec: BatterySpec, soc: float, action: int, plan_charge_kw: float, plan_discharge_kw: float,
               load_kw: float, solar_kw: float, plan_curtail_kw: float = 0.0) -> StepOutcome:
    """Run one 5-minute interval of ``action`` against the real load and solar; never beyond ratings/reserve."""
    cap = spec.capacity_kwh
    c = d = 0.0
    if action != NO_BATTERY:
        c_room = max(0.0, (spec.soc_max - soc) * cap / (spec.charge_efficiency * DT_H))
        d_room = max(0.0, (soc - spec.reserve) * cap * spec.discharge_efficiency / DT_H)
        c_max = min(spec.max_charge_kw, c_room)
        d_max = min(spec.max_discharge_kw, d_room)
        if action == 1:  # CHARGE at the plan's rate, within the grid connection
            c = min(max(plan_charge_kw, 0.0), c_max)
            over = load_kw - solar_kw + c - spec.import_limit_kw
            if over > 0:
                c = max(0.0, c - over)
        elif action == 2:  # EXPORT at the plan's rate
            d = min(max(plan_discharge_kw, 0.0), d_max)
        elif action == 3:  # SELF_CONSUMPTION: follow the real house
            net = load_kw - solar_kw
            if net > 0:
                d = min(net, d_max)
            else:
                c = min(-net, c_max)
    grid = load_kw - solar_kw + c - d
    curtail = 0.0
    if grid < 0:
        export = -grid
        curtail = min(max(plan_curtail_kw, 0.0), export, solar_kw)
        over = export - curtail - spec.export_limit_kw
        if over > 0:  # the inverter curtails solar first, then the battery backs off
            extra = min(over, solar_kw - curtail)
            curtail += extra
            over -= extra
            if over > 0:
                d = max(0.0, d - over)
        grid = load_kw - (solar_kw - curtail) + c - d
    soc_new = soc + (c * spec.charge_efficiency - d / spec.discharge_efficiency) * DT_H / cap if cap > 0 else soc
    return StepOutcome(soc=min(max(soc_new, 0.0), 1.0), charge_kw=c, discharge_kw=d,
                       import_kw=max(grid, 0.0), export_kw=max(-grid, 0.0), curtail_kw=curtail)
