"""LP period grids: the full interval grid, or a tiered one (fine near now, coarse later) aligned to UTC.

A grid is an int array ``bounds`` of interval indices: period k covers intervals ``bounds[k]:bounds[k+1]``.
Tier edges sit on UTC 30-min/60-min boundaries, so a DST day changes nothing here: the UTC grid is regular
and local time only matters at the edges (tariffs, display).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

NEAR_HOURS = 6.0  # 5-min resolution for the first hours (where the plan is acted on)
MID_HOURS = 24.0  # then 30-min to 24 h
MID_MINUTES = 30
FAR_MINUTES = 60  # then 60-min to the horizon end


def full_bounds(n: int) -> np.ndarray:
    return np.arange(n + 1, dtype=np.int64)


def _ceil_to(x: int, m: int) -> int:
    return -(-x // m) * m


@lru_cache(maxsize=4096)
def _tiered_bounds_cached(phase: int, n: int, interval_minutes: int, near_hours: float, mid_hours: float) -> tuple[int, ...]:
    per_hour = 60 // interval_minutes
    mid_len = max(1, MID_MINUTES // interval_minutes)
    far_len = max(1, FAR_MINUTES // interval_minutes)
    # absolute interval index of start modulo one hour = phase; edges are aligned in absolute terms
    near_end = _ceil_to(phase + int(round(near_hours * per_hour)), mid_len) - phase
    mid_end = _ceil_to(phase + int(round(mid_hours * per_hour)), far_len) - phase
    near_end, mid_end = min(near_end, n), min(max(mid_end, near_end), n)
    b = list(range(0, near_end))
    b += list(range(near_end, mid_end, mid_len))
    b += list(range(mid_end, n, far_len))
    b.append(n)
    return tuple(b)


def tiered_bounds(
    start: pd.Timestamp, n: int, interval_minutes: int = 5, near_hours: float = NEAR_HOURS, mid_hours: float = MID_HOURS
) -> np.ndarray:
    """Period edges for the tiered grid starting at ``start`` (on the UTC interval grid)."""
    if MID_MINUTES % interval_minutes or FAR_MINUTES % interval_minutes:
        return full_bounds(n)
    per_hour = 60 // interval_minutes
    phase = int((start.value // 10**9 // 60) // interval_minutes) % per_hour
    return np.asarray(_tiered_bounds_cached(phase, n, interval_minutes, near_hours, mid_hours), dtype=np.int64)


def max_tiered_periods(n: int, interval_minutes: int = 5, near_hours: float = NEAR_HOURS, mid_hours: float = MID_HOURS) -> int:
    """The most periods any start phase gives (a fixed-size model can hold every replan)."""
    if MID_MINUTES % interval_minutes or FAR_MINUTES % interval_minutes:
        return n
    per_hour = 60 // interval_minutes
    return max(len(_tiered_bounds_cached(p, n, interval_minutes, near_hours, mid_hours)) - 1 for p in range(per_hour))


class Aggregator:
    """Means of per-interval arrays over periods, and the expansion back (vectorised, reusable)."""

    def __init__(self, bounds: np.ndarray, interval_hours: float):
        self.bounds = bounds
        self.n_periods = len(bounds) - 1
        self.lengths = np.diff(bounds)
        self.dt = self.lengths * interval_hours
        self.trivial = bool((self.lengths == 1).all())
        self.period_of = np.repeat(np.arange(self.n_periods), self.lengths)

    def mean(self, a: np.ndarray) -> np.ndarray:
        if self.trivial:
            return a
        return np.add.reduceat(a, self.bounds[:-1]) / self.lengths

    def last(self, a: np.ndarray) -> np.ndarray:
        return a[self.bounds[1:] - 1]

    def expand(self, a: np.ndarray) -> np.ndarray:
        return a if self.trivial else a[self.period_of]
