"""One charging session: when the car came, when it leaves, how much it needs, and what the charger can do.

Energies are at the car's battery (what the driver asks for); the site draws ``energy / efficiency`` from the
grid and solar. Currents are per phase; a charger is commanded in whole amps, 0 or ``min_amps..max_amps``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import time as dtime
from zoneinfo import ZoneInfo

import pandas as pd

from ..config.ev import EV_MODES, EvConfig


class EvSessionError(ValueError):
    """A session that cannot be planned as given (one line, names the field)."""


@dataclass(frozen=True)
class ChargerLimits:
    """What the charger can deliver: current per phase between ``min_amps`` and ``max_amps``."""

    min_amps: float
    max_amps: float
    phases: int = 1
    voltage: float = 230.0

    @classmethod
    def from_config(cls, cfg: EvConfig) -> ChargerLimits:
        return cls(cfg.min_amps, cfg.max_amps, cfg.phases, cfg.voltage)

    @property
    def kw_per_amp(self) -> float:
        return self.phases * self.voltage / 1000.0

    @property
    def max_kw(self) -> float:
        return self.max_amps * self.kw_per_amp

    @property
    def min_kw(self) -> float:
        return self.min_amps * self.kw_per_amp

    def amps_for(self, kw: float) -> int:
        """The whole amps that draw at most ``kw``: 0 below ``min_amps``, never above ``max_amps``."""
        if not math.isfinite(kw) or kw <= 0:
            return 0
        a = math.floor(kw / self.kw_per_amp + 1e-9)
        if a < self.min_amps:
            return 0
        return int(min(a, math.floor(self.max_amps)))

    def kw_for(self, amps: float) -> float:
        return amps * self.kw_per_amp


@dataclass(frozen=True)
class EvSession:
    """A plugged-in car to be charged by ``departure`` (UTC) with ``energy_kwh`` more in its battery."""

    plugged_in: pd.Timestamp
    departure: pd.Timestamp
    energy_kwh: float
    limits: ChargerLimits
    efficiency: float = 0.9
    mode: str = "cost_optimized"
    allow_battery_to_ev: bool = False

    def __post_init__(self) -> None:
        for name in ("plugged_in", "departure"):
            ts = pd.Timestamp(getattr(self, name))
            if ts.tzinfo is None:
                raise EvSessionError(f"session.{name} must carry a time zone, got {ts!r}")
            object.__setattr__(self, name, ts.tz_convert("UTC"))
        if not (math.isfinite(self.energy_kwh) and self.energy_kwh >= 0):
            raise EvSessionError(f"session.energy_kwh must be a number >= 0, got {self.energy_kwh!r}")
        if not 0 < self.efficiency <= 1:
            raise EvSessionError(f"session.efficiency must be in (0, 1], got {self.efficiency!r}")
        if self.mode not in EV_MODES:
            raise EvSessionError(f"session.mode must be one of {', '.join(EV_MODES)}, got {self.mode!r}")
        if self.departure <= self.plugged_in:
            raise EvSessionError(f"session.departure {self.departure} is not after plug-in {self.plugged_in}")

    @property
    def grid_energy_kwh(self) -> float:
        """AC energy the site must deliver for the car to gain ``energy_kwh``."""
        return self.energy_kwh / self.efficiency

    def delivered(self, kwh_at_car: float) -> EvSession:
        """The same session with ``kwh_at_car`` already delivered (what is left to plan)."""
        return replace(self, energy_kwh=max(0.0, self.energy_kwh - kwh_at_car))

    @classmethod
    def from_config(
        cls,
        cfg: EvConfig,
        plugged_in: pd.Timestamp,
        tz: str | ZoneInfo,
        *,
        departure: str | pd.Timestamp | None = None,
        target_kwh: float | None = None,
        target_soc_pct: float | None = None,
        current_soc_pct: float | None = None,
        mode: str | None = None,
    ) -> EvSession:
        """A session from the site's ``ev:`` section, with its ``default_session`` filling what is not given.

        ``departure`` is a local ``HH:MM`` (the next such time after plug-in) or a timestamp. The energy is
        ``target_kwh``, or ``(target_soc - current_soc) x battery_kwh`` for SOC targets.
        """
        d = cfg.default_session
        departure = departure if departure is not None else (d.departure if d else None)
        if departure is None:
            raise EvSessionError("session needs a departure (HH:MM or a time) and the site has no default_session")
        dep = next_local_time(departure, plugged_in, tz) if isinstance(departure, str) else pd.Timestamp(departure)
        if target_kwh is None and target_soc_pct is None and d is not None:
            target_kwh, target_soc_pct = d.target_kwh, d.target_soc_pct
        if target_kwh is not None:
            energy = float(target_kwh)
        elif target_soc_pct is not None:
            cur = current_soc_pct if current_soc_pct is not None else (d.current_soc_pct if d else None)
            cap = d.battery_kwh if d else None
            if cur is None or cap is None:
                raise EvSessionError("a target_soc_pct needs the car's current SOC and default_session.battery_kwh")
            energy = max(0.0, (float(target_soc_pct) - float(cur)) / 100.0 * cap)
        else:
            raise EvSessionError("session needs target_kwh or target_soc_pct (none given, no default_session)")
        return cls(pd.Timestamp(plugged_in), dep, energy, ChargerLimits.from_config(cfg), cfg.efficiency,
                   mode or (d.mode if d else "cost_optimized"), cfg.allow_battery_to_ev)


def next_local_time(hhmm: str, after: pd.Timestamp, tz: str | ZoneInfo) -> pd.Timestamp:
    """The first instant strictly after ``after`` whose local wall clock reads ``hhmm`` (UTC)."""
    try:
        h, m = (int(x) for x in hhmm.split(":"))
        wall = dtime(h, m)
    except ValueError:
        raise EvSessionError(f"departure must be HH:MM, got {hhmm!r}") from None
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    local = pd.Timestamp(after).tz_convert(zone)
    cand = pd.Timestamp.combine(local.date(), wall).tz_localize(zone, nonexistent="shift_forward", ambiguous=True)
    if cand <= local:
        day = local.date() + pd.Timedelta(days=1)
        cand = pd.Timestamp.combine(day, wall).tz_localize(zone, nonexistent="shift_forward", ambiguous=True)
    return cand.tz_convert("UTC")
