"""Dynamic power sharing: each cycle, the car gets what the connection leaves, in whole amps, without flapping.

    room_kw = connection limit - house import - battery charging + solar surplus
            = limit - (load - solar + battery charging)

measured without the car. Battery discharge is not counted as room: the battery may stop at any moment (and
in its own self-consumption mode it would otherwise follow the car), so the import stays within the limit
whatever it does. The car's current is ``min(requested, room, charger max)`` in whole amps per phase, 0 below
``min_amps``.

Hysteresis, so a charger is not told something new every cycle:

* lower is applied at once (the connection limit and the solar surplus come first);
* higher only when it is at least ``raise_deadband_a`` above the current setpoint;
* after a pause, charging resumes only when ``min_amps + resume_margin_a`` fits, and not before
  ``min_pause_cycles`` cycles (contactors and cars dislike rapid start/stop).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .session import ChargerLimits


@dataclass(frozen=True)
class SharingSettings:
    raise_deadband_a: int = 2
    resume_margin_a: int = 2
    min_pause_cycles: int = 3


@dataclass(frozen=True)
class SharingState:
    """What the charger was last told (amps; 0 = paused) and for how many cycles it has been paused."""

    amps: int = 0
    paused_cycles: int = 1_000_000


@dataclass(frozen=True)
class SharingDecision:
    amps: int
    room_kw: float
    room_amps: int
    reason: str
    state: SharingState

    def kw(self, limits: ChargerLimits) -> float:
        return limits.kw_for(self.amps)


def room_kw(limit_kw: float, load_kw: float, solar_kw: float, battery_charge_kw: float) -> float:
    """What the connection leaves for the car (kW, >= 0), measured without the car."""
    return max(0.0, limit_kw - (load_kw - solar_kw + battery_charge_kw))


def share(limits: ChargerLimits, requested_kw: float, limit_kw: float, load_kw: float, solar_kw: float,
          battery_charge_kw: float, state: SharingState = SharingState(),
          settings: SharingSettings = SharingSettings()) -> SharingDecision:
    """One cycle's charger current. ``requested_kw`` is what the mode's plan wants now (``inf`` = as much as
    possible); the other powers are the site's measurements without the car (kW, non-negative)."""
    for name, v in (("load_kw", load_kw), ("solar_kw", solar_kw), ("battery_charge_kw", battery_charge_kw)):
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"power sharing: {name} must be a finite number >= 0, got {v!r}")
    room = room_kw(limit_kw, load_kw, solar_kw, battery_charge_kw)
    room_a = limits.amps_for(room)
    want_a = limits.amps_for(min(max(requested_kw, 0.0), room, limits.max_kw))
    cur = state.amps
    if want_a <= 0:
        reason = "paused: below the charger's minimum" if requested_kw > 0 else "paused: nothing requested"
        if state.amps == 0:
            return SharingDecision(0, room, room_a, reason, SharingState(0, state.paused_cycles + 1))
        return SharingDecision(0, room, room_a, reason, SharingState(0, 1))
    if cur == 0:
        resume_a = math.ceil(limits.min_amps) + settings.resume_margin_a
        if state.paused_cycles < settings.min_pause_cycles or want_a < min(resume_a, math.floor(limits.max_amps)):
            return SharingDecision(0, room, room_a, "paused: waiting to resume with margin", SharingState(0, state.paused_cycles + 1))
        return SharingDecision(want_a, room, room_a, "resumed", SharingState(want_a, 0))
    if want_a < cur:
        return SharingDecision(want_a, room, room_a, "lowered", SharingState(want_a, 0))
    if want_a - cur >= settings.raise_deadband_a:
        return SharingDecision(want_a, room, room_a, "raised", SharingState(want_a, 0))
    return SharingDecision(cur, room, room_a, "held", SharingState(cur, 0))
