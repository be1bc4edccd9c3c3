"""The optimisation problem: battery parameters, price/solar/load arrays, options, validation and JSON.

The JSON shape is the ``powersync optimize --problem`` contract (issue 5); ``from_dict``/``to_dict`` are the
only places that know it, so the CLI and the pipeline cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_WEAR_COST_PER_KWH = 0.01  # $/kWh cycled: small, only stops cycling on spreads below a cent
COST_FUNCTIONS = ("cost", "self_consumption", "profit")
HORIZONS = ("full", "tiered")
SOLVERS = ("lp", "greedy")


class ProblemError(ValueError):
    """An optimisation problem that cannot be solved as given (the message is one line and names the field)."""


@dataclass(frozen=True)
class BatteryParams:
    """One battery as the planner sees it: AC power limits, one-way efficiencies, SOC fractions."""

    capacity_kwh: float
    soc_initial: float
    max_charge_kw: float
    max_discharge_kw: float
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    reserve: float = 0.1

    def validate(self) -> None:
        def finite(name: str) -> float:
            v = getattr(self, name)
            if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
                raise ProblemError(f"battery.{name} must be a finite number, got {v!r}")
            return float(v)

        if finite("capacity_kwh") <= 0:
            raise ProblemError(f"battery.capacity_kwh must be > 0, got {self.capacity_kwh}")
        for name in ("max_charge_kw", "max_discharge_kw"):
            if finite(name) < 0:
                raise ProblemError(f"battery.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("charge_efficiency", "discharge_efficiency"):
            v = finite(name)
            if not 0 < v <= 1:
                raise ProblemError(f"battery.{name} must be in (0, 1], got {v}")
        for name in ("soc_initial", "reserve"):
            v = finite(name)
            if not 0 <= v <= 1:
                raise ProblemError(f"battery.{name} must be a fraction in [0, 1], got {v}")

    def to_dict(self) -> dict[str, float]:
        return {k: float(getattr(self, k)) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BatteryParams:
        if not isinstance(d, dict):
            raise ProblemError("battery must be an object")
        required = ("capacity_kwh", "soc_initial", "max_charge_kw", "max_discharge_kw")
        missing = [k for k in required if k not in d]
        if missing:
            raise ProblemError(f"battery is missing {', '.join(missing)}")
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ProblemError(f"battery has unknown keys {sorted(unknown)}")
        return cls(**{k: _number(v, f"battery.{k}", "a number") for k, v in d.items()})


@dataclass(frozen=True)
class EvRequirement:
    """An EV that needs ``energy_kwh`` delivered before ``deadline`` at up to ``max_kw`` (SPEC §10, cost optimised).

    ``battery_to_ev=False`` keeps the home battery's discharge to the house while the car charges, so the car
    is charged from the grid and solar (the sites file's ``ev.allow_battery_to_ev``, default off); see
    ``model.py`` for the linear form.
    """

    energy_kwh: float
    deadline: pd.Timestamp
    max_kw: float
    battery_to_ev: bool = True


@dataclass(frozen=True)
class DemandCharge:
    """A demand tariff: ``price_per_kw`` on the peak average import over ``interval_minutes`` (UTC-aligned)
    inside ``window`` (SPEC §11).

    ``existing_peak_kw`` is the billing month's peak so far; only exceeding it costs money.
    """

    window: np.ndarray  # bool per interval
    price_per_kw: float
    existing_peak_kw: float = 0.0
    interval_minutes: int = 30


def check_demand_charge(dc: DemandCharge, n: int, interval_minutes: int) -> None:
    """Raise ProblemError (one line) unless ``dc`` fits a plan of ``n`` intervals of ``interval_minutes``."""
    if len(dc.window) != n:
        raise ProblemError(f"length mismatch: demand_charge.window has {len(dc.window)} values, import_price has {n}")
    if not (math.isfinite(dc.price_per_kw) and dc.price_per_kw >= 0 and math.isfinite(dc.existing_peak_kw) and dc.existing_peak_kw >= 0):
        raise ProblemError("demand_charge.price_per_kw and existing_peak_kw must be finite numbers >= 0")
    if dc.interval_minutes not in (5, 10, 15, 30, 60) or dc.interval_minutes < interval_minutes:
        raise ProblemError(f"demand_charge.interval_minutes must be 5, 10, 15, 30 or 60 and at least interval_minutes, got {dc.interval_minutes!r}")


def _as_array(name: str, v: Any) -> np.ndarray:
    try:
        a = np.asarray(v, dtype=float)
    except (TypeError, ValueError):
        raise ProblemError(f"{name} must be an array of numbers") from None
    if a.ndim != 1:
        raise ProblemError(f"{name} must be one-dimensional, got shape {a.shape}")
    return a


def _number(v: Any, name: str, expected: str) -> float:
    """A JSON number (not a bool, string, list or object) as a float; anything else is a one-line ProblemError."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ProblemError(f"{name} must be {expected}, got {v!r}")
    return float(v)


def _limit(v: Any, name: str) -> float:
    if v is None:
        return math.inf
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ProblemError(f"{name} must be a number or null, got {v!r}") from None
    if math.isnan(f) or f < 0:
        raise ProblemError(f"{name} must be >= 0, got {v!r}")
    return f


@dataclass
class OptimizationProblem:
    """Everything one plan needs. Arrays are per interval (``interval_minutes``) from ``start`` (UTC)."""

    start: pd.Timestamp
    import_price: np.ndarray
    export_price: np.ndarray
    solar_kw: np.ndarray
    load_kw: np.ndarray
    battery: BatteryParams
    interval_minutes: int = 5
    export_limit_kw: float | None = None
    import_limit_kw: float | None = None
    wear_cost_per_kwh: float = DEFAULT_WEAR_COST_PER_KWH
    terminal_value: str | float = "auto"
    cost_function: str = "cost"
    ev: EvRequirement | None = None
    demand_charge: DemandCharge | None = None
    soc_final: float | None = None  # end the horizon at exactly this SOC (EMHASS-style target); None = free
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("import_price", "export_price", "solar_kw", "load_kw"):
            setattr(self, name, _as_array(name, getattr(self, name)))
        try:
            ts = pd.Timestamp(self.start)
        except (TypeError, ValueError):
            raise ProblemError(f"start is not a timestamp: {self.start!r}") from None
        if ts.tzinfo is None:
            raise ProblemError(f"start must carry a time zone (UTC), got {self.start!r}")
        self.start = ts.tz_convert("UTC")
        self.export_limit_kw = _limit(self.export_limit_kw, "export_limit_kw")
        self.import_limit_kw = _limit(self.import_limit_kw, "import_limit_kw")

    @property
    def n(self) -> int:
        return len(self.import_price)

    @property
    def dt_hours(self) -> float:
        return self.interval_minutes / 60.0

    def index(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start, periods=self.n, freq=f"{self.interval_minutes}min", name="interval_start")

    def validate(self) -> None:
        """Raise ProblemError with a one-line reason if the problem is malformed (limits: None → no limit)."""
        self.export_limit_kw = _limit(self.export_limit_kw, "export_limit_kw")
        self.import_limit_kw = _limit(self.import_limit_kw, "import_limit_kw")
        self.battery.validate()
        if not isinstance(self.interval_minutes, int) or self.interval_minutes <= 0 or 60 % self.interval_minutes:
            raise ProblemError(f"interval_minutes must divide 60 (5, 15, 30, 60), got {self.interval_minutes!r}")
        step = pd.Timedelta(minutes=self.interval_minutes)
        if (self.start - self.start.floor(step)) != pd.Timedelta(0):
            raise ProblemError(f"start {self.start.isoformat()} is not on the {self.interval_minutes}-min UTC grid")
        n = self.n
        if n == 0:
            raise ProblemError("import_price is empty")
        for name in ("export_price", "solar_kw", "load_kw"):
            if len(getattr(self, name)) != n:
                raise ProblemError(f"length mismatch: {name} has {len(getattr(self, name))} values, import_price has {n}")
        for name in ("import_price", "export_price", "solar_kw", "load_kw"):
            a = getattr(self, name)
            bad = np.flatnonzero(~np.isfinite(a))
            if bad.size:
                raise ProblemError(f"{name} has a non-finite value (NaN/inf) at index {bad[0]}")
        for name in ("solar_kw", "load_kw"):
            a = getattr(self, name)
            if (a < 0).any():
                raise ProblemError(f"{name} has a negative value at index {int(np.argmax(a < 0))}")
        if not isinstance(self.wear_cost_per_kwh, int | float) or not math.isfinite(self.wear_cost_per_kwh) or self.wear_cost_per_kwh < 0:
            raise ProblemError(f"wear_cost_per_kwh must be a finite number >= 0, got {self.wear_cost_per_kwh!r}")
        tv = self.terminal_value
        if isinstance(tv, str):
            if tv not in ("auto", "none"):
                raise ProblemError(f"terminal_value must be 'auto', 'none' or a number, got {tv!r}")
        elif not isinstance(tv, int | float) or isinstance(tv, bool) or not math.isfinite(tv) or tv < 0:
            raise ProblemError(f"terminal_value must be 'auto', 'none' or a number >= 0, got {tv!r}")
        if self.cost_function not in COST_FUNCTIONS:
            raise ProblemError(f"cost_function must be one of {', '.join(COST_FUNCTIONS)}, got {self.cost_function!r}")
        if self.soc_final is not None and not (isinstance(self.soc_final, int | float) and 0 <= self.soc_final <= 1):
            raise ProblemError(f"soc_final must be a fraction in [0, 1] or null, got {self.soc_final!r}")
        if self.ev is not None:
            ev = self.ev
            if not (math.isfinite(ev.energy_kwh) and ev.energy_kwh >= 0 and math.isfinite(ev.max_kw) and ev.max_kw >= 0):
                raise ProblemError("ev.energy_kwh and ev.max_kw must be finite numbers >= 0")
        if self.demand_charge is not None:
            check_demand_charge(self.demand_charge, n, self.interval_minutes)

    # ----- JSON contract -----
    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OptimizationProblem:
        """Parse the problem JSON of the CLI contract; raises ProblemError (one line) on a bad shape."""
        if not isinstance(d, dict):
            raise ProblemError("problem must be a JSON object")
        required = ("start", "import_price", "export_price", "solar_kw", "load_kw", "battery")
        missing = [k for k in required if k not in d]
        if missing:
            raise ProblemError(f"problem is missing {', '.join(missing)}")
        interval = d.get("interval_minutes", 5)
        if not isinstance(interval, int) or isinstance(interval, bool):
            raise ProblemError(f"interval_minutes must be an integer, got {interval!r}")
        tv = d.get("terminal_value", "auto")
        if tv is None:
            tv = "none"
        if not isinstance(tv, str):
            tv = _number(tv, "terminal_value", "'auto', 'none' or a number >= 0")
        soc_final = d.get("soc_final")
        if soc_final is not None:
            soc_final = _number(soc_final, "soc_final", "a fraction in [0, 1] or null")
        arrays = {}
        for k in ("import_price", "export_price", "solar_kw", "load_kw"):
            v = d[k]
            if not isinstance(v, list):
                raise ProblemError(f"{k} must be an array")
            bad = next((i for i, x in enumerate(v) if isinstance(x, bool) or not isinstance(x, int | float)), None)
            if bad is not None:
                raise ProblemError(f"{k} must hold numbers; index {bad} is {'null' if v[bad] is None else repr(v[bad])}")
            arrays[k] = _as_array(k, v)
        ev = None
        if d.get("ev"):
            e = d["ev"]
            if not isinstance(e, dict) or not {"energy_kwh", "deadline", "max_kw"} <= set(e):
                raise ProblemError(f"ev needs energy_kwh, deadline (ISO UTC) and max_kw, got {e!r}")
            try:
                deadline = pd.Timestamp(e["deadline"])
            except (TypeError, ValueError):
                raise ProblemError(f"ev.deadline is not a timestamp: {e['deadline']!r}") from None
            if deadline.tzinfo is None:
                raise ProblemError(f"ev.deadline must carry a time zone (UTC), got {e['deadline']!r}")
            battery_to_ev = e.get("battery_to_ev", True)
            if not isinstance(battery_to_ev, bool):
                raise ProblemError(f"ev.battery_to_ev must be true or false, got {battery_to_ev!r}")
            ev = EvRequirement(_number(e["energy_kwh"], "ev.energy_kwh", "a number"), deadline.tz_convert("UTC"),
                               _number(e["max_kw"], "ev.max_kw", "a number"), battery_to_ev)
        dc = None
        if d.get("demand_charge"):
            c = d["demand_charge"]
            if not isinstance(c, dict) or "window" not in c or "price_per_kw" not in c:
                raise ProblemError("demand_charge needs window (bools), price_per_kw and existing_peak_kw")
            window = c["window"]
            if not isinstance(window, list) or not all(isinstance(x, bool) for x in window):
                raise ProblemError("demand_charge.window must be an array of true/false, one per interval")
            minutes = c.get("interval_minutes", 30)
            if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes <= 0:
                raise ProblemError(f"demand_charge.interval_minutes must be a positive whole number, got {minutes!r}")
            dc = DemandCharge(np.asarray(window, dtype=bool), _number(c["price_per_kw"], "demand_charge.price_per_kw", "a number"),
                              _number(c.get("existing_peak_kw", 0.0), "demand_charge.existing_peak_kw", "a number"),
                              minutes)
        wear = d.get("wear_cost_per_kwh", DEFAULT_WEAR_COST_PER_KWH)
        wear = DEFAULT_WEAR_COST_PER_KWH if wear is None else _number(wear, "wear_cost_per_kwh", "a number >= 0")
        p = cls(
            start=d["start"],
            battery=BatteryParams.from_dict(d["battery"]),
            interval_minutes=interval,
            export_limit_kw=d.get("export_limit_kw"),
            import_limit_kw=d.get("import_limit_kw"),
            wear_cost_per_kwh=wear,
            terminal_value=tv,
            cost_function=d.get("cost_function", "cost"),
            soc_final=soc_final,
            ev=ev,
            demand_charge=dc,
            **arrays,
        )
        p.validate()
        return p

    def to_dict(self) -> dict[str, Any]:
        def lim(v: float | None) -> float | None:
            return None if v is None or math.isinf(v) else float(v)

        d: dict[str, Any] = {
            "start": self.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "interval_minutes": self.interval_minutes,
            "import_price": self.import_price.tolist(),
            "export_price": self.export_price.tolist(),
            "solar_kw": self.solar_kw.tolist(),
            "load_kw": self.load_kw.tolist(),
            "battery": self.battery.to_dict(),
            "export_limit_kw": lim(self.export_limit_kw),
            "import_limit_kw": lim(self.import_limit_kw),
            "wear_cost_per_kwh": float(self.wear_cost_per_kwh),
            "terminal_value": self.terminal_value,
            "cost_function": self.cost_function,
        }
        if self.soc_final is not None:
            d["soc_final"] = float(self.soc_final)
        if self.ev is not None:
            d["ev"] = {"energy_kwh": self.ev.energy_kwh, "deadline": self.ev.deadline.strftime("%Y-%m-%dT%H:%M:%SZ"),
                       "max_kw": self.ev.max_kw, "battery_to_ev": self.ev.battery_to_ev}
        if self.demand_charge is not None:
            dc = self.demand_charge
            d["demand_charge"] = {"window": [bool(x) for x in dc.window], "price_per_kw": dc.price_per_kw,
                                  "existing_peak_kw": dc.existing_peak_kw, "interval_minutes": dc.interval_minutes}
        return d
