"""Battery + house energy balance shared by every simulator (and the in-memory ``simulated`` battery).

Modes: ``self_consumption`` (battery absorbs surplus solar, serves the load), ``charge`` / ``discharge`` at a
commanded power, ``idle`` (no battery flow). Power is clamped to the rating, the user rate limits and the SOC
window [max(min_soc, reserve), max_soc]; export is capped by the export limit (discharge first, then solar is
curtailed). Signs here: ``battery_kw`` + discharging, ``grid_kw`` + importing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

LoadFn = Callable[[float], float]  # simulated seconds since start -> kW


@dataclass
class Flows:
    battery_kw: float = 0.0
    grid_kw: float = 0.0
    load_kw: float = 0.0
    solar_kw: float = 0.0
    curtailed_kw: float = 0.0


@dataclass
class BatteryModel:
    capacity_kwh: float = 13.5
    soc: float = 0.5
    soh: float = 0.97
    max_charge_kw: float = 5.0
    max_discharge_kw: float = 5.0
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    min_soc: float = 0.05
    max_soc: float = 1.0
    reserve: float = 0.10
    charge_limit_kw: float | None = None
    discharge_limit_kw: float | None = None
    export_limit_kw: float | None = None
    load_kw: float | LoadFn = 0.8
    solar_kw: float | LoadFn = 0.0
    mode: str = "self_consumption"
    command_kw: float = 0.0
    sim_seconds: float = 0.0
    flows: Flows = field(default_factory=Flows)

    def update(self, soc: float | None = None, load_kw: float | LoadFn | None = None,
               solar_kw: float | LoadFn | None = None) -> None:
        """Set the state a test or the ``simulate`` command changes by hand (None leaves a field as is)."""
        if soc is not None:
            self.soc = soc
        if load_kw is not None:
            self.load_kw = load_kw
        if solar_kw is not None:
            self.solar_kw = solar_kw

    def _value(self, v: float | LoadFn) -> float:
        return max(0.0, float(v(self.sim_seconds) if callable(v) else v))

    @property
    def floor(self) -> float:
        return max(self.min_soc, self.reserve)

    def compute(self, dt_h: float) -> Flows:
        """Flows for the next ``dt_h`` hours at the current settings (SOC not changed)."""
        load, solar = self._value(self.load_kw), self._value(self.solar_kw)
        ch_cap = min(self.max_charge_kw, self.charge_limit_kw if self.charge_limit_kw is not None else 1e9)
        dis_cap = min(self.max_discharge_kw, self.discharge_limit_kw if self.discharge_limit_kw is not None else 1e9)
        if dt_h > 0:
            room_kw = max(0.0, (self.max_soc - self.soc) * self.capacity_kwh / (self.charge_efficiency * dt_h))
            avail_kw = max(0.0, (self.soc - self.floor) * self.capacity_kwh * self.discharge_efficiency / dt_h)
        else:  # instantaneous view: the battery can act unless it sits at a bound
            room_kw = 1e9 if self.soc < self.max_soc - 1e-9 else 0.0
            avail_kw = 1e9 if self.soc > self.floor + 1e-9 else 0.0
        ch_cap, dis_cap = min(ch_cap, room_kw), min(dis_cap, avail_kw)
        charge = discharge = 0.0
        if self.mode == "self_consumption":
            net = solar - load
            if net > 0:
                charge = min(net, ch_cap)
            else:
                discharge = min(-net, dis_cap)
        elif self.mode == "charge":
            charge = min(max(self.command_kw, 0.0), ch_cap)
        elif self.mode == "discharge":
            discharge = min(max(self.command_kw, 0.0), dis_cap)
        grid = load - solar + charge - discharge
        curtailed = 0.0
        if self.export_limit_kw is not None and -grid > self.export_limit_kw:
            excess = -grid - self.export_limit_kw
            cut = min(excess, discharge)
            discharge -= cut
            excess -= cut
            curtailed = min(excess, solar)
            grid = load - (solar - curtailed) + charge - discharge
        return Flows(battery_kw=discharge - charge, grid_kw=grid, load_kw=load, solar_kw=solar - curtailed,
                     curtailed_kw=curtailed)

    def step(self, seconds: float) -> Flows:
        """Advance the simulated clock, integrating SOC with the round-trip losses."""
        dt_h = max(0.0, seconds) / 3600.0
        f = self.compute(dt_h)
        if dt_h > 0:
            charge, discharge = max(-f.battery_kw, 0.0), max(f.battery_kw, 0.0)
            delta = (charge * self.charge_efficiency - discharge / self.discharge_efficiency) * dt_h
            self.soc = min(self.max_soc, max(0.0, self.soc + delta / self.capacity_kwh))
            self.sim_seconds += seconds
        self.flows = self.compute(0.0)
        return f
