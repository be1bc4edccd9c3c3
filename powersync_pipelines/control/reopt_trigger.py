"""When to re-plan before the next 5-minute schedule tick: the prices or forecasts changed materially.

The schedule re-plans every 5 minutes anyway; this trigger only exists for changes that should not wait:

* a new AEMO dispatch interval whose RRP moved by ``RRP_MOVE`` $/MWh or more, or crossed the spike threshold;
* a new Amber 5-minute update that moves the current import/export price by ``PRICE_MOVE`` $/kWh or more, flips
  the spike flag, or shifts the next two hours of forecast by ``FORECAST_MOVE`` $/kWh somewhere;
* a new Octopus day: the published horizon extends by ``NEW_DAY`` or more (Agile publishes ~16:00 UK time).

``snapshot`` condenses a price frame into a small JSON-able signature; ``material_change`` compares two. Pure.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

RRP_MOVE = 100.0  # $/MWh between consecutive dispatch intervals
PRICE_MOVE = 0.05  # $/kWh on the current interval
FORECAST_MOVE = 0.05  # $/kWh anywhere in the next FORECAST_WINDOW
FORECAST_WINDOW = pd.Timedelta(hours=2)
NEW_DAY = pd.Timedelta(hours=6)


@dataclass(frozen=True)
class PriceSnapshot:
    """What the re-planning cares about in one site's prices at one moment."""

    current_interval: str | None = None  # ISO UTC start of the interval containing now
    import_now: float | None = None
    export_now: float | None = None
    spike_now: str | None = None
    rrp_now: float | None = None  # AEMO-family only
    horizon_end: str | None = None  # ISO UTC end of the last published interval
    near_import: tuple[float, ...] = ()  # next FORECAST_WINDOW, 5-min grid, rounded to 0.1 c
    near_export: tuple[float, ...] = ()

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> PriceSnapshot:
        d = dict(d)
        d["near_import"] = tuple(d.get("near_import") or ())
        d["near_export"] = tuple(d.get("near_export") or ())
        return cls(**d)

    def digest(self) -> str:
        return hashlib.sha1(repr(sorted(self.to_json().items())).encode()).hexdigest()[:12]


def snapshot(frame: pd.DataFrame, now: pd.Timestamp) -> PriceSnapshot:
    """Condense a price frame (UTC index of interval starts) around ``now``."""
    if frame.empty:
        return PriceSnapshot()
    idx = frame.index
    step = idx.to_series().diff().median() if len(idx) > 1 else pd.Timedelta(minutes=5)
    current = frame.loc[idx <= now]
    cur = current.iloc[-1] if not current.empty and now < current.index[-1] + step else None
    grid = pd.date_range(now.floor("5min"), now.floor("5min") + FORECAST_WINDOW, freq="5min", inclusive="left")
    near = frame[["import_price", "export_price"]].reindex(frame.index.union(grid)).sort_index().ffill().reindex(grid)
    rrp = cur.get("rrp") if cur is not None and "rrp" in frame else None
    return PriceSnapshot(
        current_interval=current.index[-1].isoformat() if cur is not None else None,
        import_now=float(cur["import_price"]) if cur is not None else None,
        export_now=float(cur["export_price"]) if cur is not None else None,
        spike_now=str(cur["spike_status"]) if cur is not None and "spike_status" in frame else None,
        rrp_now=float(rrp) if rrp is not None and not pd.isna(rrp) else None,
        horizon_end=(idx[-1] + step).isoformat(),
        near_import=tuple(np.round(near["import_price"].to_numpy(dtype=float), 3).tolist()),
        near_export=tuple(np.round(near["export_price"].to_numpy(dtype=float), 3).tolist()),
    )


def dispatch_snapshot(interval_start: pd.Timestamp, rrp: float) -> PriceSnapshot:
    """A snapshot from a dispatch price alone (AEMO-family sites, read from what the spike watch saw)."""
    return PriceSnapshot(current_interval=interval_start.isoformat(), rrp_now=float(rrp))


def _max_move(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    n = min(len(a), len(b))
    if n == 0:
        return 0.0
    x, y = np.asarray(a[:n], dtype=float), np.asarray(b[:n], dtype=float)
    return float(np.nanmax(np.abs(x - y))) if np.isfinite(x - y).any() else 0.0


def material_change(prev: PriceSnapshot | None, cur: PriceSnapshot, spike_threshold: float | None = None) -> str | None:
    """Why ``cur`` deserves an early re-plan compared with ``prev`` (None: it does not)."""
    if prev is None or cur == prev:
        return None
    if cur.rrp_now is not None and prev.rrp_now is not None and cur.current_interval != prev.current_interval:
        move = cur.rrp_now - prev.rrp_now
        if abs(move) >= RRP_MOVE:
            return f"new dispatch interval {cur.current_interval}: RRP {prev.rrp_now:.2f} -> {cur.rrp_now:.2f} $/MWh"
        if spike_threshold is not None and (prev.rrp_now >= spike_threshold) != (cur.rrp_now >= spike_threshold):
            return f"RRP crossed the spike threshold {spike_threshold:.0f} $/MWh ({cur.rrp_now:.2f})"
    if cur.horizon_end and prev.horizon_end and \
            pd.Timestamp(cur.horizon_end) - pd.Timestamp(prev.horizon_end) >= NEW_DAY:
        return f"prices published to {cur.horizon_end} (was {prev.horizon_end}): a new day"
    if cur.spike_now is not None and prev.spike_now is not None and cur.spike_now != prev.spike_now:
        return f"spike flag changed {prev.spike_now} -> {cur.spike_now}"
    for name in ("import_now", "export_now"):
        a, b = getattr(prev, name), getattr(cur, name)
        if a is not None and b is not None and abs(b - a) >= PRICE_MOVE:
            return f"{name.replace('_now', '')} price {a:.4f} -> {b:.4f} $/kWh"
    if cur.current_interval == prev.current_interval:
        move = max(_max_move(prev.near_import, cur.near_import), _max_move(prev.near_export, cur.near_export))
        if move >= FORECAST_MOVE:
            return f"forecast for the next 2 h moved by up to {move:.3f} $/kWh"
    return None
