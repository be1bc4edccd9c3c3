"""From the modelled series (wholesale RRP) to what the owner pays and earns, and the spike-reserve rule.

The model forecasts one series (AEMO RRP in $/MWh where the data has it, else the import price itself);
the planner needs import and export prices. A retail tariff is an affine map of the wholesale price with an
optional floor (``import = max(floor, a * rrp + b)``), so :class:`RetailMap` is either given (from the
site's ``RetailMapping``) or fitted on realised (series, price) pairs from the past.

**Spike-reserve rule** (:func:`spike_reserve_prices`): where the model's upper quantile (P90) at a future
slot reaches the spike threshold (default 200 $/MWh), the price the planner sees there is lifted from the
expected value towards that quantile: ``plan = mean + weight * (p90 - mean)`` (default weight 1: the
planner sees the P90 itself). A linear planner then values energy held for those slots at the plausible
spike price, so it keeps the battery charged into the window instead of spending it on a small evening
spread, tops it up in cheaper hours before, and does not charge from the grid inside it. The current
interval is never changed, so when the spike does not come the replan five minutes later releases the
energy. Realised accounting is untouched: only the planning price changes. ``weight`` = 0 switches the
rule off. Chosen by captured money on tuning windows that the benchmark never evaluates
(``benchmarks/bench_price_forecast.py --select``): during development the pooled capture over those
windows went from 0.46 without the rule to 0.86 with weight 1 at 200 $/MWh (plus the regime-aware
quantiles), most of it in a winter cap-spike fortnight (0.41 -> 0.91).

**Gate** (``RESERVE_GATE``, :func:`reserve_gate_open`): the rule fires only after a realised spike
lately. Why: in calm or dear-but-spike-free weeks the calm regime's P90 still reaches 200 $/MWh every
evening (it is climatology: the first spikes of past episodes started from calm) and the ungated rule holds
the battery full for spikes that do not come, day after day. Spikes cluster: on the VIC1 days 2023-2026
outside the evaluated months, 9 of the 10 evenings that reached 2,000 $/MWh followed a day with >= 300
$/MWh, and only 16 % of days did. The default is ``((300, 1),)``: >= 300 $/MWh within the last day, the
price model's own "hot" regime. Longer or dearer gates (``((500, 3), (1000, 14))``) miss the first spikes
of an episode.

**Horizon** (``RESERVE_HORIZON_HOURS``, default 18 h): only slots within that many hours of now are
lifted. Beyond it a P90 says nothing about *that* evening, and lifting tomorrow's evening every night kept
the battery full (and bought at night) for days; 18 h still covers this evening from the night before, so
the battery is refilled in time (6 or 12 h lost the 2024-07/08 cap window: 0.91 -> 0.66 / 0.75).

**Two thresholds** (:func:`reserve_threshold`): inside a spike episode (a realised interval >= 1000 $/MWh
within 7 days, ``EPISODE_GATE``) the rule fires from 200 $/MWh; outside one only from 300 $/MWh
(``QUIET_THRESHOLD_PER_MWH``). A dear winter week has evening P90s of 200-300 every day and holding the
battery for them cost the daily cycles (2024-07 winter window 0.25 -> 0.47); one threshold of 300
everywhere lost the cap fortnight (0.91 -> 0.68), 400 or 500 outside episodes lost the first spikes of
2025-02 (0.64 -> 0.31 / 0.28).

The defaults live in ``config.features`` (a site's ``features.spike_reserve`` starts from them);
:func:`reserve_rule` builds the rule from a site's settings. Whether a site plans with the rule at all is
decided day by day by realised money (``backtest.selection``): on a regime the rule was not tuned for,
planning without it can win. Figures: ``benchmarks/bench_price_forecast.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..config.features import (
    EPISODE_GATE,
    QUIET_THRESHOLD_PER_MWH,
    RESERVE_GATE,
    RESERVE_HORIZON_HOURS,
    RESERVE_SIDE,
    RESERVE_SIDES,
    RESERVE_WEIGHT,
    SPIKE_THRESHOLD_PER_MWH,
    Gate,
    SpikeReserveConfig,
    check_gate,
)
from ..timegrid import STEPS_PER_DAY

__all__ = ["EPISODE_GATE", "QUIET_THRESHOLD_PER_MWH", "RESERVE_GATE", "RESERVE_HORIZON_HOURS", "RESERVE_SIDE",
           "RESERVE_SIDES", "RESERVE_WEIGHT", "SPIKE_THRESHOLD_PER_MWH", "RetailMap", "SpikeReserveRule",
           "check_gate", "gate_open", "last_spike_age_days", "reserve_gate_open", "reserve_rule",
           "reserve_threshold", "spike_reserve_prices"]


@dataclass(frozen=True)
class SpikeReserveRule:
    """The spike-reserve rule's settings as one value (levels in wholesale $/MWh).

    Why one value: the live blend (``blend.blend_price_horizon``), the backtest's learned model and a site's
    ``features.spike_reserve`` all plan with the same rule; built from this one type they cannot drift apart
    by a keyword one of them forgot. The defaults are ``config.features``' (chosen by captured money).

    ``weight``, ``threshold`` (inside a spike episode), ``quiet_threshold`` (outside one; None: ``threshold``
    everywhere), ``gate`` / ``episode_gate`` (``((level, days), ...)``; ``()``: always open / always inside an
    episode), ``horizon_hours`` (None: the whole horizon) and ``side``.
    """

    weight: float = RESERVE_WEIGHT
    threshold: float = SPIKE_THRESHOLD_PER_MWH
    quiet_threshold: float | None = QUIET_THRESHOLD_PER_MWH
    gate: Gate = RESERVE_GATE
    episode_gate: Gate = EPISODE_GATE
    horizon_hours: float | None = RESERVE_HORIZON_HOURS
    side: str = RESERVE_SIDE

    def __post_init__(self) -> None:
        check_reserve_side(self.side)
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"spike reserve weight {self.weight!r}: expected a value in [0, 1]")
        if self.horizon_hours is not None and not self.horizon_hours > 0:
            raise ValueError(f"spike reserve horizon {self.horizon_hours!r} h: expected > 0 (or None: everything)")
        for name in ("gate", "episode_gate"):
            object.__setattr__(self, name, check_gate(name, getattr(self, name)))  # lists become hashable tuples

    @property
    def active(self) -> bool:
        """Whether the rule lifts anything at all (weight 0: the planner sees the expected value)."""
        return self.weight > 0

    def lookback_days(self) -> float:
        """Days of realised history the gates read (see :func:`reserve_lookback_days`)."""
        return reserve_lookback_days(self.gate, self.episode_gate)

    def plan(self, mean: np.ndarray, p90: np.ndarray, *, in_episode: bool, scale: float = 1.0) -> np.ndarray:
        """The planning path where the gate is open: the threshold in force (:func:`reserve_threshold`) and the
        lift (:func:`spike_reserve_prices`); ``scale`` puts the $/MWh levels into the series' units (1/1000 for a
        $/kWh series)."""
        threshold = reserve_threshold(in_episode, self.threshold, self.quiet_threshold) * scale
        return spike_reserve_prices(mean, p90, threshold, self.weight, self.horizon_hours)

    def export_path(self, mean: np.ndarray, planned: np.ndarray) -> np.ndarray:
        """The path exports are priced on: the planned one, or the expected value with ``side`` "import"."""
        return mean if self.side == "import" else planned


def reserve_rule(config: SpikeReserveConfig) -> SpikeReserveRule:
    """The rule a site plans with, from its ``features.spike_reserve`` (weight 0 when disabled)."""
    return SpikeReserveRule(weight=config.weight if config.enabled else 0.0, threshold=config.threshold_per_mwh,
                            quiet_threshold=config.quiet_threshold_per_mwh, gate=tuple(config.gate),
                            episode_gate=tuple(config.episode_gate), horizon_hours=config.horizon_hours,
                            side=config.side)


@dataclass(frozen=True)
class RetailMap:
    """``y = max(floor, slope * x + intercept)`` (``floor`` None = no floor)."""

    slope: float = 1.0
    intercept: float = 0.0
    floor: float | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = self.slope * np.asarray(x, dtype=float) + self.intercept
        return y if self.floor is None else np.maximum(y, self.floor)

    @classmethod
    def from_retail(cls, network_adder_per_kwh: float, gst: float, import_floor_per_kwh: float | None,
                    export_factor: float, export_fee_per_kwh: float) -> tuple[RetailMap, RetailMap]:
        """(import, export) maps from RRP $/MWh, as ``prices.history.retail_prices`` computes them."""
        imp = cls((1 + gst) / 1000.0, network_adder_per_kwh * (1 + gst), import_floor_per_kwh)
        exp = cls(export_factor / 1000.0, -export_fee_per_kwh, None)
        return imp, exp

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray) -> RetailMap:
        """Least squares on past pairs; a floor is recognised when the lowest ``y`` repeats over varying ``x``."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        ok = np.isfinite(x) & np.isfinite(y)
        x, y = x[ok], y[ok]
        if len(x) == 0:
            return cls()
        floor = None
        ymin = float(y.min())
        at = np.abs(y - ymin) < 1e-9
        if at.sum() >= 2 and np.ptp(x[at]) > 1e-9 and (~at).sum() >= 2:
            floor = ymin
            x, y = x[~at], y[~at]
        if np.ptp(x) < 1e-12:
            return cls(0.0, float(y.mean()), floor)
        slope, intercept = np.polyfit(x, y, 1)
        return cls(float(slope), float(intercept), floor)


def spike_reserve_prices(mean: np.ndarray, p90: np.ndarray, threshold: float = SPIKE_THRESHOLD_PER_MWH,
                         weight: float = RESERVE_WEIGHT,
                         horizon_hours: float | None = RESERVE_HORIZON_HOURS) -> np.ndarray:
    """The planning price path with the spike-reserve rule applied (same units as the inputs).

    A slot is spike-plausible when its P90 reaches ``threshold``; only slots up to ``horizon_hours`` ahead
    are lifted (None: to the end); slot 0 (the current, known interval) is never changed.
    """
    mean = np.asarray(mean, float)
    p90 = np.asarray(p90, float)
    if weight <= 0:
        return mean.copy()
    lift = np.where(p90 >= threshold, np.maximum(p90 - mean, 0.0) * weight, 0.0)
    lift[0] = 0.0
    if horizon_hours is not None:
        lift[max(1, int(round(horizon_hours * STEPS_PER_DAY / 24))):] = 0.0
    return mean + lift


def reserve_threshold(in_episode: bool, threshold: float = SPIKE_THRESHOLD_PER_MWH,
                      quiet: float | None = QUIET_THRESHOLD_PER_MWH) -> float:
    """The spike threshold in force: ``threshold`` inside a spike episode (or with no quiet threshold), else
    ``quiet``. Why: a dear winter week has evening P90s of 200-300 $/MWh every day, and holding the battery
    for them costs the daily cycles; once a real spike (>= 1000 $/MWh) has happened, spikes cluster and the
    lower threshold pays (see the module docstring for the measurements)."""
    return threshold if in_episode or quiet is None else quiet


def reserve_lookback_days(*gates: tuple[tuple[float, float], ...]) -> float:
    """How many days of realised history the gates read (at least 2: the model's day of features and more)."""
    return max([2.0, *(days for gate in gates for _, days in gate)])


def check_reserve_side(value: str) -> str:
    """``value`` if it is one of :data:`RESERVE_SIDES`, else a ValueError naming it."""
    if value not in RESERVE_SIDES:
        raise ValueError(f"reserve_side {value!r}: expected one of {RESERVE_SIDES}")
    return value


def reserve_gate_open(times: np.ndarray, values: np.ndarray, now: np.datetime64 | object,
                      gate: tuple[tuple[float, float], ...] = RESERVE_GATE, scale: float = 1.0) -> bool:
    """Whether the spike-reserve rule may fire at ``now``: some realised value at or before ``now`` reached a
    gate level (x ``scale``, e.g. 1/1000 for $/kWh series) within that level's look-back days. No gate: True.

    Why: the rule pays in spike fortnights but costs money in dear, spike-free weeks (the planner holds energy
    for spikes that do not come); spikes cluster, so a recent spike is the cheapest evidence that they are
    likely. History shorter than a look-back simply has fewer chances to open the gate.
    """
    series = pd.Series(np.asarray(values, dtype=float), index=pd.DatetimeIndex(times))
    return bool(gate_open(series, pd.DatetimeIndex([pd.Timestamp(now)]), gate, scale)[0])


def gate_open(series: pd.Series, index: pd.DatetimeIndex, gate: tuple[tuple[float, float], ...],
              scale: float = 1.0) -> np.ndarray:
    """Per slot of ``index``: did a realised value of ``series`` reach some gate level (x ``scale``) within
    that level's look-back days, at or before the slot? No gate: everywhere. (The backtest asks for every
    slot at once, the live blend for ``now``.)"""
    if not gate:
        return np.ones(len(index), dtype=bool)
    out = np.zeros(len(index), dtype=bool)
    for level, days in gate:
        out |= last_spike_age_days(series, index, level * scale) <= days
    return out


def last_spike_age_days(series: pd.Series, index: pd.DatetimeIndex, level: float) -> np.ndarray:
    """Days since the last interval at or above ``level`` as known at each slot of ``index`` (inf: none seen).

    Causal: slot i sees realised values up to and including its own interval.
    """
    s = series[~series.index.duplicated(keep="last")].sort_index()
    spikes = s.index[s.to_numpy(dtype=float) >= level]
    if len(spikes) == 0:
        return np.full(len(index), np.inf)
    k = np.searchsorted(spikes, index, side="right") - 1
    age = np.asarray((index - spikes[np.maximum(k, 0)]) / pd.Timedelta(days=1), dtype=float)
    return np.where(k >= 0, age, np.inf)
