"""When to stop exporting solar: a small state machine with hysteresis and a minimum hold time.

Why hysteresis and hold: Amber/AEMO export prices hover around 0 c at midday; a bare "price <= 0" rule would
switch the inverter every 5 minutes, wearing relays and spamming APIs. So: curtail when the export price is
<= trigger (default 0 c/kWh); release only once it is >= release (default 1 c/kWh) *and* the curtailment has
lasted the minimum hold; after a release, curtail again only after the same hold. A missing price keeps the
current state (unknown is not a reason to switch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import pandas as pd

from ..config.tariff_features import CurtailmentSettings


@dataclass(frozen=True)
class CurtailState:
    curtailed: bool = False
    since: pd.Timestamp | None = None  # when the current state began (None = never switched)

    def to_dict(self) -> dict[str, object]:
        return {"curtailed": self.curtailed, "since": self.since.isoformat() if self.since is not None else None}

    @classmethod
    def from_dict(cls, raw: dict[str, object] | None) -> CurtailState:
        if not raw:
            return cls()
        since = raw.get("since")
        return cls(bool(raw.get("curtailed", False)), pd.Timestamp(str(since)) if since else None)


@dataclass(frozen=True)
class CurtailStep:
    state: CurtailState
    changed: bool
    reason: str


def next_state(state: CurtailState, export_price: float | None, now: pd.Timestamp,
               cfg: CurtailmentSettings) -> CurtailStep:
    """One evaluation of the rule at ``now`` with the current export price ($/kWh, + = owner paid)."""
    if not cfg.enabled:
        if state.curtailed:
            return CurtailStep(CurtailState(False, now), True, "curtailment disabled: restoring")
        return CurtailStep(state, False, "curtailment disabled")
    if export_price is None or (isinstance(export_price, float) and math.isnan(export_price)):
        return CurtailStep(state, False, "no export price: keeping the current state")
    held = state.since is None or now - state.since >= pd.Timedelta(minutes=cfg.min_hold_minutes)
    cents = export_price * 100.0
    if not state.curtailed:
        if export_price <= cfg.trigger:
            if held:
                return CurtailStep(replace(state, curtailed=True, since=now), True,
                                   f"export price {cents:.2f} c/kWh <= trigger {cfg.trigger_c:.2f} c")
            return CurtailStep(state, False, f"export price {cents:.2f} c/kWh <= trigger, but released "
                                             f"less than {cfg.min_hold_minutes:g} min ago")
        return CurtailStep(state, False, f"export price {cents:.2f} c/kWh above trigger {cfg.trigger_c:.2f} c")
    if export_price >= cfg.release:
        if held:
            return CurtailStep(replace(state, curtailed=False, since=now), True,
                               f"export price {cents:.2f} c/kWh >= release {cfg.release_c:.2f} c")
        return CurtailStep(state, False, f"export price {cents:.2f} c/kWh >= release, but curtailed "
                                         f"less than {cfg.min_hold_minutes:g} min ago")
    return CurtailStep(state, False, f"export price {cents:.2f} c/kWh below release {cfg.release_c:.2f} c: "
                                     "staying curtailed")


def current_export_price(prices: pd.DataFrame, now: pd.Timestamp) -> float | None:
    """The export price of the interval containing ``now`` (the last row starting at or before it)."""
    if prices.empty:
        return None
    idx = prices.index
    pos = idx.searchsorted(pd.Timestamp(now).tz_convert("UTC"), side="right") - 1
    if pos < 0:
        return None
    step = idx[1] - idx[0] if len(idx) > 1 else pd.Timedelta(minutes=30)
    if pd.Timestamp(now) - idx[pos] >= max(step, pd.Timedelta(minutes=5)) * 2:
        return None  # the last price is stale: too far behind now
    value = prices["export_price"].iloc[pos]
    return None if pd.isna(value) else float(value)


def curtailment_schedule(prices: pd.DataFrame, cfg: CurtailmentSettings,
                         initial: CurtailState = CurtailState()) -> pd.DataFrame:
    """Run the rule over a price frame (interval starts as evaluation times): the planned curtailment windows.

    Columns: export_price, curtailed, changed, reason. For the UI and backtests; the live sensor steps the
    machine once per evaluation instead.
    """
    state = initial
    rows = []
    for ts, price in prices["export_price"].items():
        step = next_state(state, None if pd.isna(price) else float(price), ts, cfg)
        state = step.state
        rows.append((ts, price, state.curtailed, step.changed, step.reason))
    out = pd.DataFrame(rows, columns=["interval_start", "export_price", "curtailed", "changed", "reason"])
    return out.set_index("interval_start")
