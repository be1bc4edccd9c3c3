"""A Markov chain of wholesale price levels, learned from stored history, for stochastic planning.

Why a chain beside the profile + regression model (:mod:`.price_model`): a battery facing spikes needs the
*option value* of stored energy, and an expected-value path smears a rare spike into a modest bump the LP
can safely ignore, while quantiles say nothing about how long a spike lasts once it starts. A chain over
price bins keeps both: how likely prices climb from the current level at this hour of day, and how long
they stay up. :mod:`..optimizer.sdp` plans over it by dynamic programming, deciding now with the
knowledge that later decisions will see the prices as they come.

The model: fixed bin edges in $/MWh (:data:`BIN_EDGES_PER_MWH`, scaled for a $/kWh series), the
recency-weighted mean value of each bin, and one 5-minute transition matrix per local hour of day, each
row shrunk towards the all-hours row by ``prior_weight`` pseudo-transitions (a spike bin seen twice at
03:00 must not decide the 03:00 row alone). Fitted from ``history[history.index < as_of]`` only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..optimizer.sdp import bin_distribution
from ..timegrid import STEP, STEPS_PER_DAY
from .price_model import PriceModelError, local_keys, price_scale

# $/MWh: negative, cheap, ordinary (four), dear, high, spike, extreme, cap-like.
BIN_EDGES_PER_MWH = (0.0, 40.0, 80.0, 120.0, 170.0, 250.0, 400.0, 800.0, 2000.0, 6000.0)


@dataclass(frozen=True)
class PriceChainConfig:
    fit_days: int = 56
    min_days: float = 2.0
    half_life_days: float = 14.0  # recency weight of a transition (a calm fortnight lowers spike odds)
    prior_weight: float = 20.0  # pseudo-transitions pulling each hour's row towards the all-hours row


@dataclass
class PriceChain:
    """Bins, their mean values (series units) and per-hour 5-minute transition matrices."""

    timezone: str
    edges: np.ndarray  # (B - 1,) inner bin edges, series units
    values: np.ndarray  # (B,) recency-weighted mean of the history in each bin
    trans: np.ndarray  # (24, B, B) rows sum to 1: P(bin at t+5 min | bin at t, local hour of t)
    as_of: pd.Timestamp
    n_train: int
    config: PriceChainConfig

    @property
    def n_bins(self) -> int:
        return len(self.values)

    def bin_of(self, x: np.ndarray | float) -> np.ndarray:
        return np.searchsorted(self.edges, np.asarray(x, dtype=float), side="right")

    def step_matrices(self, index: pd.DatetimeIndex) -> np.ndarray:
        """(n, B, B): the transition out of each interval of ``index`` (by its local hour)."""
        _, _, hour = local_keys(index, self.timezone)
        return self.trans[hour]

    def distribution(self, current: float, index: pd.DatetimeIndex) -> np.ndarray:
        """(n, B): the bin distribution of each interval of ``index`` given the current value at ``index[0]``."""
        return bin_distribution(self.step_matrices(index), int(self.bin_of(current)))


def fit_price_chain(history: pd.Series, as_of: pd.Timestamp, timezone: str, config: PriceChainConfig | None = None,
                    series: str = "rrp") -> PriceChain:
    """Fit on the last ``fit_days`` of ``history`` (values by UTC interval start) strictly before ``as_of``."""
    cfg = config or PriceChainConfig()
    as_of = pd.Timestamp(as_of)
    if history.index.tz is None:
        raise PriceModelError("price history index must be timezone-aware (UTC interval starts)")
    h = history[(history.index >= as_of - pd.Timedelta(days=cfg.fit_days)) & (history.index < as_of)].dropna()
    if len(h) < cfg.min_days * STEPS_PER_DAY:
        raise PriceModelError(f"price history before {as_of.isoformat()} has {len(h)} intervals; the chain needs "
                              f"at least {cfg.min_days:g} days")
    grid = pd.date_range(h.index[0].floor("5min"), h.index[-1].floor("5min"), freq=STEP)
    x = h[~h.index.duplicated(keep="last")].reindex(grid, method="ffill").to_numpy(dtype=float)
    edges = np.asarray(BIN_EDGES_PER_MWH) * price_scale(series)
    b = np.searchsorted(edges, x, side="right")
    n_bins = len(edges) + 1
    age = ((as_of - grid) / pd.Timedelta(days=1)).to_numpy()
    w = 0.5 ** (age / cfg.half_life_days)
    values = _bin_values(x, b, w, edges)
    _, _, hour = local_keys(grid, timezone)
    counts = np.zeros((24, n_bins, n_bins))
    np.add.at(counts, (hour[:-1], b[:-1], b[1:]), w[1:])
    pooled = counts.sum(axis=0)
    rows = pooled.sum(axis=1, keepdims=True)
    pooled = np.where(rows > 0, pooled / np.maximum(rows, 1e-12), np.eye(n_bins))
    trans = counts + cfg.prior_weight * pooled[None]
    trans /= trans.sum(axis=2, keepdims=True)
    return PriceChain(timezone=timezone, edges=edges, values=values, trans=trans, as_of=as_of, n_train=len(x),
                      config=cfg)


def _bin_values(x: np.ndarray, b: np.ndarray, w: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Weighted mean per bin; an empty bin takes its midpoint (the outer bins: the edge -/+ half the gap)."""
    n_bins = len(edges) + 1
    s = np.bincount(b, weights=w * x, minlength=n_bins)
    n = np.bincount(b, weights=w, minlength=n_bins)
    mid = np.concatenate([[edges[0] - (edges[1] - edges[0]) / 2], (edges[:-1] + edges[1:]) / 2,
                          [edges[-1] * 1.5]])
    return np.where(n > 1e-9, s / np.maximum(n, 1e-12), mid)
