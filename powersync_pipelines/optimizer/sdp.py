"""Stochastic dynamic programming over a Markov chain of price bins: plan knowing prices come as they come.

Why beside the LP: the LP plans on one price path, so it must be told in advance where a spike will be;
the scenario LP (:mod:`.scenarios`) reveals a whole scenario after the first interval, so it trusts short
analog spikes too little or too much. A battery owner's real problem is sequential: each 5 minutes the
current price is known and the next ones are not. Backward induction over (stored energy, price bin) gives
the value of every state at every step of the horizon, and the decision now weighs each action's cost at
the known current price against the expected value of where it leaves the battery. That values stored
energy by the chance of a spike *and* by how long spikes last at this hour (the chain's persistence).

State: stored energy on a grid of ``energy_steps`` + 1 levels from the reserve to full (values between
levels interpolated linearly), and the price bin. Actions: ``power_levels`` battery powers from full
discharge to full charge, plus self-consumption (the battery covers the forecast net load or stores the
forecast surplus). Household load and solar are the forecast's, one value per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .problem import BatteryParams

DT_H = 5 / 60
SELF_CONSUMPTION = "SELF_CONSUMPTION"


@dataclass(frozen=True)
class SdpInputs:
    """One horizon: per step the forecast net load (kW, load - solar), each bin's import and export price
    ($/kWh) and the transition matrix out of the step; ``terminal_value`` $/kWh stored at the end."""

    net_kw: np.ndarray  # (n,)
    import_price: np.ndarray  # (n, B)
    export_price: np.ndarray  # (n, B)
    trans: np.ndarray  # (n, B, B)
    terminal_value: float = 0.0

    def __post_init__(self) -> None:
        n, b = self.import_price.shape
        if self.export_price.shape != (n, b) or self.trans.shape != (n, b, b) or self.net_kw.shape != (n,):
            raise ValueError(f"SDP inputs disagree: net {self.net_kw.shape}, prices {self.import_price.shape} / "
                             f"{self.export_price.shape}, transitions {self.trans.shape}")
        if n < 2:
            raise ValueError("the SDP needs a horizon of at least two steps")


@dataclass
class SdpDecision:
    action: str  # CHARGE | EXPORT | IDLE | SELF_CONSUMPTION
    battery_charge_kw: float
    battery_discharge_kw: float
    expected_cost: float  # $ from now to the horizon end (minus the terminal value)


class SdpPolicy:
    """Value functions of one horizon (:meth:`solve`) and decisions read from them (:meth:`decide`)."""

    def __init__(self, battery: BatteryParams, energy_steps: int = 120, power_levels: int = 9,
                 export_limit_kw: float | None = None, import_limit_kw: float | None = None,
                 wear_cost_per_kwh: float = 0.0) -> None:
        self.b = battery
        self.e_min = battery.reserve * battery.capacity_kwh
        self.e_max = battery.capacity_kwh
        self.levels = np.linspace(self.e_min, self.e_max, energy_steps + 1)
        self.delta = (self.e_max - self.e_min) / energy_steps
        self.powers = np.linspace(-battery.max_discharge_kw, battery.max_charge_kw, power_levels)
        if 0.0 not in self.powers:
            self.powers = np.sort(np.append(self.powers, 0.0))
        self.export_limit = np.inf if export_limit_kw is None else float(export_limit_kw)
        self.import_limit = np.inf if import_limit_kw is None else float(import_limit_kw)
        self.wear = float(wear_cost_per_kwh)
        self.value: np.ndarray | None = None  # (n + 1, B, J + 1): expected cost-to-go (lower is better)
        self.inputs: SdpInputs | None = None

    # -- the physics of one step ------------------------------------------------------------------
    def _powers(self, net: float, energy: np.ndarray) -> np.ndarray:
        """(A, len(energy)) battery kW per action, clipped to the room each energy level leaves."""
        b = self.b
        room_c = (self.e_max - energy) / (DT_H * b.charge_efficiency)
        room_d = (energy - self.e_min) * b.discharge_efficiency / DT_H
        sc = min(max(-net, -b.max_discharge_kw), b.max_charge_kw)
        p = np.append(self.powers, sc)[:, None] * np.ones(len(energy))[None, :]
        return np.clip(p, -room_d[None, :], room_c[None, :])

    def _next_energy(self, energy: np.ndarray, p: np.ndarray) -> np.ndarray:
        b = self.b
        de = np.where(p > 0, p * DT_H * b.charge_efficiency, p * DT_H / b.discharge_efficiency)
        return np.clip(energy[None, :] + de, self.e_min, self.e_max)

    def _cost(self, net: float, p: np.ndarray, imp: np.ndarray, exp: np.ndarray) -> np.ndarray:
        """(B, *p.shape) $ of one step for bin prices ``imp``/``exp`` (B,), +inf where the import limit breaks."""
        g = net + p
        buy = np.maximum(g, 0.0)
        sell = np.minimum(np.maximum(-g, 0.0), self.export_limit)
        c = (imp[:, None, None] * buy[None] - exp[:, None, None] * sell[None] + self.wear * np.abs(p)[None]) * DT_H
        return np.where((g > self.import_limit + 1e-9)[None], np.inf, c)

    def _interp(self, v: np.ndarray, energy: np.ndarray) -> np.ndarray:
        """``v`` (B, J + 1) at energies of any shape -> (B, *energy.shape)."""
        f = np.clip((energy - self.e_min) / self.delta, 0.0, len(self.levels) - 1 - 1e-9)
        lo = np.floor(f).astype(int)
        w = f - lo
        return v[:, lo] * (1 - w) + v[:, lo + 1] * w

    # -- planning -----------------------------------------------------------------------------------
    def solve(self, inputs: SdpInputs) -> None:
        """Backward induction over the horizon; step 0's row is filled too (decisions read step 1 onwards)."""
        n, nb = inputs.import_price.shape
        e = self.levels
        v = np.zeros((n + 1, nb, len(e)))
        v[n] = -inputs.terminal_value * (e - self.e_min)[None, :]
        for k in range(n - 1, -1, -1):
            ev = inputs.trans[k] @ v[k + 1]  # (B, J + 1): expected cost-to-go after a step from each bin
            p = self._powers(float(inputs.net_kw[k]), e)
            nxt = self._interp(ev, self._next_energy(e, p))  # (B, A, J + 1)
            q = self._cost(float(inputs.net_kw[k]), p, inputs.import_price[k], inputs.export_price[k]) + nxt
            v[k] = q.min(axis=1)
        self.value, self.inputs = v, inputs

    def decide(self, offset: int, current_bin: int, import_price: float, export_price: float, net_kw: float,
               soc: float) -> SdpDecision:
        """The decision at step ``offset`` of the solved horizon, at the known current prices and SOC."""
        if self.value is None or self.inputs is None:
            raise RuntimeError("solve() before decide()")
        k = min(max(int(offset), 0), len(self.inputs.net_kw) - 1)
        ev = self.inputs.trans[k][int(current_bin)] @ self.value[k + 1]  # (J + 1,)
        energy = np.array([min(max(soc * self.b.capacity_kwh, self.e_min), self.e_max)])
        p = self._powers(float(net_kw), energy)  # (A, 1)
        nxt = self._interp(ev[None, :], self._next_energy(energy, p))[0]
        cost = self._cost(float(net_kw), p, np.array([import_price]), np.array([export_price]))[0]
        q = (cost + nxt)[:, 0]
        a = int(np.argmin(q))
        kw = float(p[a, 0])
        if a == len(q) - 1 and abs(kw) > 1e-9:
            action = SELF_CONSUMPTION
        elif kw > 1e-9:
            action = "CHARGE"
        elif kw < -1e-9:
            action = "EXPORT"
        else:
            action = "IDLE"
        return SdpDecision(action, max(kw, 0.0), max(-kw, 0.0), float(q[a]))


@dataclass(frozen=True)
class ChainPrices:
    """What a forecast gives the SDP planner at one step: per horizon step each bin's import / export price
    (n, B) and the transition out of the step (n, B, B); the current interval's bin and real prices; ``key``
    changes when the chain is refitted (the planner then solves afresh)."""

    import_price: np.ndarray
    export_price: np.ndarray
    trans: np.ndarray
    current_bin: int
    current_import: float
    current_export: float
    key: object = None


def chain_terminal_value(chain: ChainPrices, battery: BatteryParams) -> float:
    """$/kWh stored at the horizon end: the cheapest expected import price in the horizon's second half times
    the discharge efficiency (the LP's ``auto`` rule: what refilling the battery would cost), under the
    chain's distribution from the current bin."""
    n = len(chain.import_price)
    expected = (bin_distribution(chain.trans, chain.current_bin) * chain.import_price).sum(axis=1)
    return max(float(expected[n // 2:].min()), 0.0) * battery.discharge_efficiency


def bin_distribution(trans: np.ndarray, current_bin: int) -> np.ndarray:
    """(n, B): the bin distribution at each step given the bin at step 0, ``trans`` (n, B, B) the transition
    out of each step (the last one unused)."""
    n, nb, _ = trans.shape
    p = np.zeros((n, nb))
    p[0, int(current_bin)] = 1.0
    for k in range(1, n):
        p[k] = p[k - 1] @ trans[k - 1]
    return p
