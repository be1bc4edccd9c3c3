"""The replay's input: every series on one 5-minute UTC grid, as plain numpy arrays.

Why arrays and not a DataFrame: the engine touches them ~10^5 times per strategy, and pandas indexing
costs tens of microseconds per call where a numpy slice costs well under one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..timegrid import STEP


@dataclass
class BacktestData:
    """Real (realised) series on the 5-minute grid around an accounting window.

    ``index`` covers history before the window (for persistence forecasts) and look-ahead after it (so plans
    near the window end still see 48 h); ``[i0, i1)`` is the accounted window. Prices in $/kWh as the owner
    pays/earns them, ``rrp`` the wholesale price in $/MWh where the source has one (else NaN).
    """

    index: pd.DatetimeIndex
    import_price: np.ndarray
    export_price: np.ndarray
    load_kw: np.ndarray
    solar_kw: np.ndarray
    i0: int
    i1: int
    rrp: np.ndarray | None = None
    timezone: str = "UTC"
    # Published forecasts where the data carries them (e.g. Amber captures): issue time -> price frame.
    published: dict[pd.Timestamp, pd.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.index)
        for name in ("import_price", "export_price", "load_kw", "solar_kw"):
            arr = np.ascontiguousarray(getattr(self, name), dtype=float)
            if arr.shape != (n,):
                raise ValueError(f"{name} has {arr.shape[0]} values, index has {n}")
            setattr(self, name, arr)
        if self.rrp is None:
            self.rrp = np.full(n, np.nan)
        if not 0 <= self.i0 < self.i1 <= n:
            raise ValueError(f"accounting window [{self.i0}, {self.i1}) outside the data (0..{n})")

    @property
    def n(self) -> int:
        return len(self.index)

    @property
    def window(self) -> pd.DatetimeIndex:
        return self.index[self.i0:self.i1]

    def slice(self, a: int, b: int, i0: int, i1: int) -> BacktestData:
        """A sub-range ``[a, b)`` with the accounted window ``[i0, i1)`` given in this object's positions."""
        return BacktestData(
            index=self.index[a:b], import_price=self.import_price[a:b], export_price=self.export_price[a:b],
            load_kw=self.load_kw[a:b], solar_kw=self.solar_kw[a:b], i0=i0 - a, i1=i1 - a,
            rrp=None if self.rrp is None else self.rrp[a:b], timezone=self.timezone,
            published={k: v for k, v in self.published.items() if self.index[a] <= k < self.index[b - 1] + STEP},
        )
