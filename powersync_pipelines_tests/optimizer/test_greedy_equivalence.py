"""The optimised greedy makes exactly the plan the original greedy made, on many random realistic problems.

The original algorithm (one full numpy pass over the horizon per step) is kept below as the reference; the
fast ``greedy_plan`` must reproduce its charge, discharge, grid, curtailment and SOC arrays bit for bit, so
that the speed-up changes no backtest result.
"""

from __future__ import annotations

import dataclasses
import heapq

import numpy as np
import pytest

from powersync_pipelines.optimizer.heuristics import _grid_from_net, greedy_plan
from powersync_pipelines.optimizer.solve import prepare

from .problems import realistic_problem

EPS = 1e-9


def reference_greedy(
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
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The greedy as it was before it was optimised (one full pass over the horizon per step), kept verbatim
    as the reference; returns the AC charge/discharge kWh and stored kWh that ``greedy_plan`` post-processes."""
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
    return chg, dis, soc


def reference_plan(*args, **kwargs):
    """The original ``greedy_plan`` output (its post-processing is shared code, applied the same way)."""
    (_, export_price, solar_kw, load_kw, dt_h, capacity_kwh) = args[:6]
    export_limit_kw = args[13]
    ve = export_price if kwargs.get("export_weight") is None else kwargs["export_weight"]
    chg, dis, soc = reference_greedy(*args, **kwargs)
    chg_kw, dis_kw = chg / dt_h, dis / dt_h
    imp, exp, cur = _grid_from_net(load_kw - solar_kw + chg_kw - dis_kw, export_limit_kw, solar_kw)
    extra = np.where((ve < 0) & (exp > 0), np.minimum(exp, solar_kw - cur), 0.0)
    return {"imp": imp, "exp": exp - extra, "chg": chg_kw, "dis": dis_kw, "cur": cur + extra, "soc_kwh": np.clip(soc, 0.0, capacity_kwh)}


def greedy_args(problem):
    """The arguments ``solve`` passes to the greedy for ``problem`` (floor ramp, weights, terminal value)."""
    prep = prepare(problem)
    b = problem.battery
    args = (
        problem.import_price, problem.export_price, problem.solar_kw, problem.load_kw, prep.dt, prep.cap, prep.e0,
        prep.floor_kwh, b.max_charge_kw, b.max_discharge_kw, b.charge_efficiency, b.discharge_efficiency,
        problem.import_limit_kw, problem.export_limit_kw, problem.wear_cost_per_kwh, prep.terminal_value,
    )  # fmt: skip
    return args, {"import_weight": prep.import_weight, "export_weight": prep.export_weight}


def _cases():
    """(id, problem, extra greedy kwargs): horizons, price regimes, SOC below reserve, terminal values,
    no wear, 30-min intervals, the self-consumption weights and a move cap that stops the greedy early."""
    cases = []
    for seed in range(24):
        n = (96, 288, 576)[seed % 3]
        p = realistic_problem(
            seed, n=n, negative_prices=seed % 4 == 0, soc_at_least_reserve=seed % 5 != 1,
            terminal_value=("auto", "none", 0.12, "auto")[seed % 4], wear=0.0 if seed % 6 == 2 else None,
            spikes=seed % 7 != 3,
        )  # fmt: skip
        cases.append((f"seed{seed}-n{n}", p, {}))
    for seed in range(100, 104):
        cases.append((f"30min-{seed}", realistic_problem(seed, n=96, interval_minutes=30, negative_prices=seed % 2 == 0), {}))
    for seed in range(200, 204):
        p = dataclasses.replace(realistic_problem(seed, n=576, negative_prices=seed % 2 == 1), cost_function="self_consumption")
        cases.append((f"self-consumption-{seed}", p, {}))
    for seed, cap in ((300, 1), (301, 7), (302, 40)):
        cases.append((f"max-moves-{cap}", realistic_problem(seed, n=288, negative_prices=True), {"max_moves": cap}))
    p = realistic_problem(400, n=576)
    cases.append(("grid-limits-tight", dataclasses.replace(p, import_limit_kw=float(p.load_kw.max()) + 0.5, export_limit_kw=0.5), {}))
    return cases


CASES = _cases()


@pytest.mark.parametrize(("problem", "extra"), [(p, e) for _, p, e in CASES], ids=[c[0] for c in CASES])
def test_greedy_matches_the_original_algorithm_exactly(problem, extra):
    args, kwargs = greedy_args(problem)
    kwargs.update(extra)
    want = reference_plan(*args, **kwargs)
    got = greedy_plan(*args, **kwargs)
    for name, expected in want.items():
        np.testing.assert_array_equal(getattr(got, name), expected, err_msg=f"{name} differs from the original greedy")


def test_cases_exercise_moves_in_every_direction():
    """Guard against a vacuous comparison: the reference really charges, discharges and uses the limits."""
    charged = discharged = 0
    for _, p, extra in CASES:
        args, kwargs = greedy_args(p)
        chg, dis, _ = reference_greedy(*args, **kwargs, **extra)
        charged += int((chg > EPS).sum())
        discharged += int((dis > EPS).sum())
    assert charged > 100 and discharged > 100
