"""Plans that need no LP: no battery (baseline), plain self-consumption, and the greedy fallback.

All work on the interval grid with powers in kW and return a ``Plan``. The greedy pairs the cheapest
charge slots with the dearest discharge slots while the spread beats the round-trip losses and wear,
moving one block of energy per step within SOC, power, import and export limits. Every move lowers the
objective, so the greedy is never worse than leaving the battery idle.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

EPS = 1e-9


@dataclass
class Plan:
    """A plan on the interval grid: powers in kW, ``soc_kwh`` at the end of each interval."""

    imp: np.ndarray
    exp: np.ndarray
    chg: np.ndarray
    dis: np.ndarray
    cur: np.ndarray
    soc_kwh: np.ndarray
    ev: np.ndarray
    marginal: np.ndarray


def _grid_from_net(net_kw: np.ndarray, export_limit_kw: float, solar_kw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    imp = np.maximum(net_kw, 0.0)
    surplus = np.maximum(-net_kw, 0.0)
    exp = np.minimum(surplus, export_limit_kw)
    cur = np.minimum(surplus - exp, solar_kw)
    return imp, exp, cur


def baseline_plan(solar_kw: np.ndarray, load_kw: np.ndarray, e0_kwh: float, export_limit_kw: float) -> Plan:
    """No battery: import the deficit, export the surplus up to the export limit (the rest is curtailed)."""
    n = len(load_kw)
    imp, exp, cur = _grid_from_net(load_kw - solar_kw, export_limit_kw, solar_kw)
    z = np.zeros(n)
    return Plan(imp, exp, z, z.copy(), cur, np.full(n, e0_kwh), z.copy(), z.copy())


def self_consumption_plan(
    solar_kw: np.ndarray,
    load_kw: np.ndarray,
    dt_h: float,
    capacity_kwh: float,
    e0_kwh: float,
    reserve_kwh: float,
    max_charge_kw: float,
    max_discharge_kw: float,
    eta_c: float,
    eta_d: float,
    export_limit_kw: float,
) -> Plan:
    """The battery follows the house: charges from surplus solar, discharges to cover load down to the reserve."""
    n = len(load_kw)
    net = (load_kw - solar_kw).tolist()
    chg = [0.0] * n
    dis = [0.0] * n
    soc = [0.0] * n
    e = e0_kwh
    for t in range(n):
        x = net[t]
        if x < 0:
            c = min(-x, max_charge_kw, max(0.0, capacity_kwh - e) / (eta_c * dt_h))
            chg[t] = c
            e += c * eta_c * dt_h
        elif x > 0 and e > reserve_kwh:
            d = min(x, max_discharge_kw, (e - reserve_kwh) * eta_d / dt_h)
            dis[t] = d
            e -= d * dt_h / eta_d
        soc[t] = e
    chg_a, dis_a = np.asarray(chg), np.asarray(dis)
    imp, exp, cur = _grid_from_net(load_kw - solar_kw + chg_a - dis_a, export_limit_kw, solar_kw)
    return Plan(imp, exp, chg_a, dis_a, cur, np.asarray(soc), np.zeros(n), np.zeros(n))


def ramp_floor(
    e0_kwh: float,
    reserve_kwh: float,
    solar_kw: np.ndarray,
    load_kw: np.ndarray,
    dt_h: float,
    max_charge_kw: float,
    eta_c: float,
    import_limit_kw: float,
) -> np.ndarray:
    """Lower bound on stored energy at each interval end.

    At or above the reserve it is the reserve. Below it (a raised reserve, a deep discharge) it ramps from
    the current energy back up at half the charge rate the grid connection leaves room for, so the plan is
    never infeasible because of the reserve and never discharges while recovering.
    """
    n = len(load_kw)
    if e0_kwh >= reserve_kwh:
        return np.full(n, reserve_kwh)
    headroom = np.maximum(0.0, import_limit_kw - np.maximum(load_kw - solar_kw, 0.0)) if np.isfinite(import_limit_kw) else np.full(n, np.inf)
    rate = np.minimum(max_charge_kw, headroom + np.maximum(solar_kw - load_kw, 0.0))
    return np.minimum(reserve_kwh, e0_kwh + np.cumsum(0.5 * rate * eta_c * dt_h))


def greedy_plan(
    import_price: np.ndarray,
    export_price: np.ndarray,
    solar_kw: np.ndarray,
    load_kw: np.ndarray,
    dt_h: float,
    capacity_kwh: float,
    e0_kwh: float,
    floor_kwh: np.ndarray,
    max_charge_kw: float,
    max_discharge_kw: float,
    eta_c: float,
    eta_d: float,
    import_limit_kw: float,
    export_limit_kw: float,
    wear_cost_per_kwh: float,
    terminal_value: float,
    import_weight: np.ndarray | None = None,
    export_weight: np.ndarray | None = None,
    max_moves: int = 20000,
) -> Plan:
    """Greedy arbitrage; ``import_weight``/``export_weight`` are the objective's per-kWh coefficients
    (default: the prices, i.e. the ``cost`` objective)."""
    n = len(load_kw)
    ci = import_price if import_weight is None else import_weight  # cost per kWh imported
    ve = export_price if export_weight is None else export_weight  # value per kWh exported
    net = (load_kw - solar_kw) * dt_h  # kWh, >0 deficit
    cmax = max_charge_kw * dt_h
    dmax = max_discharge_kw * dt_h
    ilim = import_limit_kw * dt_h if np.isfinite(import_limit_kw) else np.inf
    elim = export_limit_kw * dt_h if np.isfinite(export_limit_kw) else np.inf
    wc, wd = 0.5 * wear_cost_per_kwh, 0.5 * wear_cost_per_kwh
    # start: idle, or the minimum ramp back to the reserve
    stored_gain = np.diff(np.concatenate([[e0_kwh], np.maximum(floor_kwh, e0_kwh)]))
    chg = np.maximum(stored_gain, 0.0) / eta_c  # AC kWh
    dis = np.zeros(n)
    soc = e0_kwh + np.cumsum(chg * eta_c)
    floor = np.asarray(floor_kwh, dtype=float)

    def grid(t: int) -> float:
        return net[t] + chg[t] - dis[t]

    def discharge_value(t: int) -> tuple[float, float]:
        """Value per AC kWh of more discharge at t and how much is available at that value."""
        if chg[t] > EPS:
            return -1.0, 0.0
        room = dmax - dis[t]
        if room <= EPS:
            return -1.0, 0.0
        g = grid(t)
        if g > EPS:
            return ci[t], min(room, g)
        return ve[t], min(room, elim + g)  # g <= 0: exporting -g already

    def charge_costs() -> tuple[np.ndarray, np.ndarray]:
        """Cost per AC kWh of more charge in every slot and the amount at that cost (vectorised)."""
        g = net + chg - dis
        room = np.where(dis > EPS, 0.0, cmax - chg)
        surplus = g < -EPS
        cost = np.where(surplus, ve, ci)
        amount = np.where(surplus, np.minimum(room, -g), np.minimum(room, ilim - np.maximum(g, 0.0)))
        return cost, np.maximum(amount, 0.0)

    heap: list[tuple[float, int]] = []
    for t in range(n):
        v, a = discharge_value(t)
        if a > EPS:
            heapq.heappush(heap, (-(v * eta_d - wd * eta_d), t))
    # the horizon end as a "discharge" that is worth the terminal value per kWh stored
    sink_value = terminal_value
    moves = 0
    idx = np.arange(n)
    while moves < max_moves:
        # best discharge candidate: the larger of the heap top and the terminal sink
        if not heap and sink_value == -np.inf:
            break
        top_val = -heap[0][0] if heap else -np.inf
        use_sink = sink_value > top_val
        best_val = sink_value if use_sink else top_val
        t = n if use_sink else heap[0][1]
        if not use_sink:
            v, avail = discharge_value(t)
            cur_val = v * eta_d - wd * eta_d
            if avail <= EPS:
                heapq.heappop(heap)
                continue
            if abs(cur_val - top_val) > 1e-12:
                heapq.heapreplace(heap, (-cur_val, t))
                continue
        # cheapest source per kWh stored that can reach t
        cost, amount = charge_costs()
        per_stored = cost / eta_c + wc / eta_c
        ok = amount > EPS
        head = np.full(n, -np.inf)
        if t > 0:
            # charge at s < t: soc rises over [s, t-1]
            seg = soc[:t][::-1]
            hmax = np.maximum.accumulate(seg)[::-1]  # max soc over [s, t-1]
            head[:t] = capacity_kwh - hmax
        if t < n:
            # charge at s > t: soc falls over [t, s-1]
            seg = soc[t:] - floor[t:]
            hmin = np.minimum.accumulate(seg)  # min headroom over [t, s-1] for s = t+1..
            head[t + 1 :] = hmin[:-1]
        ok &= head > EPS
        ok &= idx != t
        candidates = np.where(ok, per_stored, np.inf)
        s = int(np.argmin(candidates)) if n else 0
        src_cost = candidates[s] if n else np.inf
        # the stored energy left at the end is a source too, worth the terminal value
        end_head = np.min(soc[t:] - floor[t:]) if t < n else -np.inf
        use_end = (not use_sink) and end_head > EPS and terminal_value < src_cost
        if use_end:
            src_cost = terminal_value
        profit = best_val - src_cost
        if not profit > 1e-9:
            if use_sink:
                sink_value = -np.inf
            else:
                heapq.heappop(heap)
            continue
        # amount of stored energy q to move
        if use_sink:
            q = min(amount[s] * eta_c, head[s])
        else:
            v, avail = discharge_value(t)
            q = avail / eta_d
            q = min(q, end_head) if use_end else min(q, amount[s] * eta_c, head[s])
        if q <= EPS:
            if use_sink:
                sink_value = -np.inf
            else:
                heapq.heappop(heap)
            continue
        if not use_end:
            chg[s] += q / eta_c
        if not use_sink:
            dis[t] += q * eta_d
        if use_sink:
            soc[s:] += q
        elif use_end:
            soc[t:] -= q
        elif s < t:
            soc[s:t] += q
        else:
            soc[t:s] -= q
        moves += 1
    chg_kw, dis_kw = chg / dt_h, dis / dt_h
    g = load_kw - solar_kw + chg_kw - dis_kw
    imp, exp, cur = _grid_from_net(g, export_limit_kw, solar_kw)
    # curtail exported solar when exporting costs money
    neg = (ve < 0) & (exp > 0)
    extra = np.where(neg, np.minimum(exp, solar_kw - cur), 0.0)
    exp = exp - extra
    cur = cur + extra
    soc = np.clip(soc, 0.0, capacity_kwh)
    return Plan(imp, exp, chg_kw, dis_kw, cur, soc, np.zeros(n), np.zeros(n))
