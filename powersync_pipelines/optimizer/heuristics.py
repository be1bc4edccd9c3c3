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
    (default: the prices, i.e. the ``cost`` objective).

    Each step takes the dearest discharge slot (a lazy max-heap, or the terminal value as a sink) and the
    cheapest charge slot that can reach it. The charge cost of every slot is kept up to date incrementally
    (a move changes only its two slots), and the reachable sources form one window around the discharge
    slot, bounded by the nearest full battery before it and the nearest empty one after it, so a step
    costs a few small numpy calls instead of several passes over the horizon. A discharge slot that cannot
    beat a lower bound on its sources (the cheapest anywhere, or the cheapest in a window already searched
    since the last move) is dropped without a search. The moves, and so the plan, are exactly those of a
    plain scan of every slot per step (``test_greedy_equivalence`` keeps that version as the reference).
    """
    n = len(load_kw)
    ci_a = np.asarray(import_price if import_weight is None else import_weight, dtype=float)  # cost per kWh imported
    ve_a = np.asarray(export_price if export_weight is None else export_weight, dtype=float)  # value per kWh exported
    net_a = (load_kw - solar_kw) * dt_h  # kWh, >0 deficit
    cmax = max_charge_kw * dt_h
    dmax = max_discharge_kw * dt_h
    ilim = import_limit_kw * dt_h if np.isfinite(import_limit_kw) else np.inf
    elim = export_limit_kw * dt_h if np.isfinite(export_limit_kw) else np.inf
    wc, wd = 0.5 * wear_cost_per_kwh, 0.5 * wear_cost_per_kwh
    # start: idle, or the minimum ramp back to the reserve
    stored_gain = np.diff(np.concatenate([[e0_kwh], np.maximum(floor_kwh, e0_kwh)]))
    chg_a = np.maximum(stored_gain, 0.0) / eta_c  # AC kWh
    soc = e0_kwh + np.cumsum(chg_a * eta_c)
    floor = np.asarray(floor_kwh, dtype=float)
    # per-slot state as Python floats: scalar access to lists is much cheaper than to numpy arrays
    net, ci, ve = net_a.tolist(), ci_a.tolist(), ve_a.tolist()
    chg = chg_a.tolist()
    dis = [0.0] * n
    inf, ninf = np.inf, -np.inf
    heappop, heapreplace = heapq.heappop, heapq.heapreplace
    amin, amax = np.minimum.reduce, np.maximum.reduce  # the array methods add a Python wrapper per call

    wc_per = wc / eta_c  # the same double every time it would be computed

    def source_cost(s: int) -> tuple[float, float]:
        """Cost per kWh stored of more charge at s (inf if none) and the AC kWh available at that cost."""
        g = net[s] + chg[s] - dis[s]
        room = 0.0 if dis[s] > EPS else cmax - chg[s]
        if g < -EPS:
            cost, amount = ve[s], min(room, -g)
        else:
            cost, amount = ci[s], min(room, ilim - max(g, 0.0))
        amount = max(amount, 0.0)
        return (cost / eta_c + wc_per if amount > EPS else inf), amount

    # vectorised initial charge costs (same arithmetic as source_cost)
    g0 = net_a + chg_a
    surplus0 = g0 < -EPS
    room0 = cmax - chg_a
    amount_a = np.maximum(np.where(surplus0, np.minimum(room0, -g0), np.minimum(room0, ilim - np.maximum(g0, 0.0))), 0.0)
    src = np.where(amount_a > EPS, np.where(surplus0, ve_a, ci_a) / eta_c + wc / eta_c, inf)  # per kWh stored
    amount = amount_a.tolist()
    src_l = src.tolist()  # the same costs, for cheap scalar reads
    src_min = float(src.min()) if n else inf
    lower = min(src_min, terminal_value)  # no source anywhere is cheaper than this (a bound, lowered as costs change)
    # slots where the battery is full (blocks charging earlier for later) / at its floor (blocks the reverse)
    # (bytearrays: find/rfind scan them in C, much faster than slicing a numpy mask per step)
    full = bytearray(((capacity_kwh - soc) <= EPS).tobytes())
    empty = bytearray(((soc - floor) <= EPS).tobytes())

    # Discharge value of slot t: none while it charges or has no power left; otherwise per AC kWh the import
    # it avoids (while the house imports) or the export it earns, for the amount available at that value.
    # Initial values vectorised here; the loop recomputes a slot's value (same arithmetic) when it surfaces.
    dis_room = np.where(chg_a > EPS, 0.0, dmax)
    deficit = g0 > EPS
    dval = np.where(deficit, ci_a, ve_a)
    davail = np.where(deficit, np.minimum(dis_room, g0), np.minimum(dis_room, elim + g0))
    keys = -(dval * eta_d - wd * eta_d)
    pushable = (chg_a <= EPS) & (dis_room > EPS) & (davail > EPS)
    heap: list[tuple[float, int]] = [(k, t) for k, t in zip(keys[pushable].tolist(), np.flatnonzero(pushable).tolist(), strict=True)]
    heapq.heapify(heap)  # (key, slot) pairs are unique, so the pop order does not depend on the layout
    # the horizon end as a "discharge" that is worth the terminal value per kWh stored
    sink_value = terminal_value
    window_min: dict[tuple[int, int], float] = {}  # (lo, hi) -> cheapest source in it, until the next move
    moves = 0
    while moves < max_moves:
        # best discharge candidate: the larger of the heap top and the terminal sink
        if not heap and sink_value == -np.inf:
            break
        if heap:
            key, t = heap[0]
            top_val = -key
        else:
            top_val = ninf
        use_sink = sink_value > top_val
        if use_sink:
            best_val, t = sink_value, n
        else:
            best_val = top_val
            # the current discharge value of t (see above): entries go stale when t takes part in a move
            if chg[t] > EPS or (room := dmax - dis[t]) <= EPS:
                heappop(heap)
                continue
            g = net[t] + chg[t] - dis[t]
            if g > EPS:
                v, avail = ci[t], min(room, g)
            else:
                v, avail = ve[t], min(room, elim + g)  # g <= 0: exporting -g already
            if avail <= EPS:
                heappop(heap)
                continue
            cur_val = v * eta_d - wd * eta_d
            if abs(cur_val - top_val) > 1e-12:
                heapreplace(heap, (-cur_val, t))
                continue
        if not best_val - lower > 1e-9:  # every source costs at least `lower`: no profit possible
            if use_sink:
                sink_value = ninf
            else:
                heappop(heap)
            continue
        # reachable sources: after the last full slot before t, up to the first empty slot from t on
        lo = full.rfind(1, 0, t) + 1
        hi = n - 1
        end_ok = False
        if t < n:
            k = empty.find(1, t)
            if k >= 0:
                hi = k
            else:
                end_ok = True  # never at the floor from t on: the stored energy at the end can be used
        # a window already searched since the last move: its cheapest source (t included) bounds the cost of
        # every slot with the same window, so most slots the greedy drops are dropped without a search
        bound = window_min.get((lo, hi))
        if bound is not None and not best_val - (min(bound, terminal_value) if end_ok else bound) > 1e-9:
            if use_sink:
                sink_value = ninf
            else:
                heappop(heap)
            continue
        s, src_cost, window_best = 0, inf, inf
        if lo <= hi:
            if t < n:
                saved = src_l[t]
                src[t] = inf
                k = int(src[lo : hi + 1].argmin())
                best_src = src_l[lo + k] if lo + k != t else inf
                src[t] = saved
                window_best = min(best_src, saved)
            else:
                k = int(src[lo : hi + 1].argmin())
                window_best = best_src = src_l[lo + k]
            if best_src < inf:
                s, src_cost = lo + k, best_src
        # the stored energy left at the end is a source too, worth the terminal value
        use_end = (not use_sink) and end_ok and terminal_value < src_cost
        if use_end:
            src_cost = terminal_value
        profit = best_val - src_cost
        if not profit > 1e-9:
            window_min[lo, hi] = window_best
            if use_sink:
                sink_value = ninf
            else:
                heappop(heap)
            continue
        # amount of stored energy q to move
        if use_end:
            head_s = 0.0
        elif s < t:
            head_s = capacity_kwh - float(amax(soc[s:t]))
        else:
            head_s = float(amin(np.subtract(soc[t:s], floor[t:s])))
        if use_sink:
            q = min(amount[s] * eta_c, head_s)
        else:
            q = avail / eta_d  # `avail` from the check above: nothing has moved since
            q = min(q, float(amin(np.subtract(soc[t:], floor[t:])))) if use_end else min(q, amount[s] * eta_c, head_s)
        if q <= EPS:
            if use_sink:
                sink_value = ninf
            else:
                heappop(heap)
            continue
        if not use_end:
            chg[s] += q / eta_c
        if not use_sink:
            dis[t] += q * eta_d
        if use_sink:
            a, b = s, n
            soc[s:] += q
        elif use_end:
            a, b = t, n
            soc[t:] -= q
        elif s < t:
            a, b = s, t
            soc[s:t] += q
        else:
            a, b = t, s
            soc[t:s] -= q
        # more energy can only clear "empty" marks and less only "full" ones: skip a mask with none to clear
        seg = soc[a:b]
        if use_sink or (s < t and not use_end):
            full[a:b] = (np.subtract(capacity_kwh, seg) <= EPS).tobytes()
            if empty.find(1, a, b) >= 0:
                empty[a:b] = (np.subtract(seg, floor[a:b]) <= EPS).tobytes()
        else:
            empty[a:b] = (np.subtract(seg, floor[a:b]) <= EPS).tobytes()
            if full.find(1, a, b) >= 0:
                full[a:b] = (np.subtract(capacity_kwh, seg) <= EPS).tobytes()
        if not use_end:
            cost_u, amount[s] = source_cost(s)
            src[s] = src_l[s] = cost_u
            if cost_u < lower:  # keep `lower` a lower bound
                lower = cost_u
        if not use_sink:
            cost_u, amount[t] = source_cost(t)
            src[t] = src_l[t] = cost_u
            if cost_u < lower:
                lower = cost_u
        window_min.clear()
        moves += 1
    chg_kw, dis_kw = np.asarray(chg) / dt_h, np.asarray(dis) / dt_h
    g = load_kw - solar_kw + chg_kw - dis_kw
    imp, exp, cur = _grid_from_net(g, export_limit_kw, solar_kw)
    # curtail exported solar when exporting costs money
    neg = (ve_a < 0) & (exp > 0)
    extra = np.where(neg, np.minimum(exp, solar_kw - cur), 0.0)
    exp = exp - extra
    cur = cur + extra
    soc = np.clip(soc, 0.0, capacity_kwh)
    return Plan(imp, exp, chg_kw, dis_kw, cur, soc, np.zeros(n), np.zeros(n))
