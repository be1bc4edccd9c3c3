"""The replay engine: walk the 5-minute grid, replan like the live system, apply one interval, account.

Chunking (deterministic, whatever the number of processes): the window is cut at the site's local month
starts. Each chunk after the first starts ``warmup_days`` early with the configured initial SOC and its
warm-up intervals are discarded, so its SOC at the month start is close to what one continuous run would
have had; the chunks then run on separate cores. The perfect-foresight bound is one full-resolution LP per
``pf_chunk_days`` block with ``pf_lookahead_days`` of real data beyond it (kept, then dropped), carrying
SOC from block to block sequentially: a feasible trajectory whose only approximation is that the LP cannot
see further than the look-ahead (a battery cycles daily, so 2 days changes nothing measurable).

Worker processes are started with ``spawn`` (safe beside Dagster's and tqdm's threads): a script that calls
:func:`run_backtest` over several months needs the usual ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import queue
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..timegrid import DT_H, STEPS_PER_DAY
from .battery import ACTION_CODES, ACTION_NAMES, NO_BATTERY, BatterySpec, apply_step
from .data import BacktestData
from .errors import BacktestInputError
from .forecasts import ForecastOptions, make_forecast
from .planners import PLANNER_STRATEGIES, make_planner, perfect_foresight_plan

STRATEGIES = ("none", "self_consumption", "greedy", "lp", "perfect_foresight")
ALWAYS = ("none", "self_consumption", "perfect_foresight")
TRACE_FIELDS = ("action", "charge_kw", "discharge_kw", "import_kw", "export_kw", "curtail_kw", "soc")


@dataclass(frozen=True)
class BacktestConfig:
    """What to replay and how. ``strategies`` lists the ones to compare; ``none`` (the baseline),
    ``self_consumption`` (the reference every summary reports) and ``perfect_foresight`` (the bound) are
    always computed because the savings and capture ratio need them."""

    strategies: tuple[str, ...] = ("lp", "greedy", "self_consumption")
    forecast: str = "perfect"
    forecast_options: ForecastOptions = field(default_factory=ForecastOptions)
    horizon: str = "tiered"
    horizon_hours: float = 48.0
    terminal_value: str | float = "auto"
    greedy_every: int = 6  # greedy replans every 30 min (see planners.GreedyPlanner)
    workers: int | None = None  # None: one per core, at most one per chunk
    warmup_days: float = 1.0
    pf_chunk_days: float = 7.0
    pf_lookahead_days: float = 2.0
    spike_threshold_per_mwh: float = 3000.0
    progress: bool | None = None  # None: a bar only on a terminal
    # False: skip the perfect-foresight LP (the selection's shadow replays compare strategies by savings only);
    # the bound's rows then repeat the baseline, so capture ratios read as undefined.
    bound: bool = True

    def __post_init__(self) -> None:
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown:
            raise BacktestInputError(f"unknown strategies {unknown} (choose from {', '.join(STRATEGIES)})")
        if self.greedy_every < 1:
            raise BacktestInputError(f"greedy_every must be >= 1, got {self.greedy_every}")
        if self.horizon not in ("full", "tiered"):
            raise BacktestInputError(f"horizon must be full or tiered, got {self.horizon!r}")

    @property
    def all_strategies(self) -> tuple[str, ...]:
        return tuple(s for s in STRATEGIES if s in self.strategies or s in ALWAYS)

    @property
    def chosen(self) -> str:
        """The strategy reported as ``cost``: the live planner if it ran, else the first one asked for."""
        for s in ("lp", *self.strategies):
            if s in self.strategies and s not in ("none", "perfect_foresight"):
                return s
        return self.strategies[0] if self.strategies else "none"


@dataclass
class ChunkTask:
    data: BacktestData  # sliced; data.i0/i1 = the chunk's accounted part
    sim_start: int  # local slot where the simulation starts (<= data.i0; the gap is warm-up)
    spec: BatterySpec
    config: BacktestConfig
    progress_queue: object = None


@dataclass
class ChunkResult:
    start: pd.Timestamp
    traces: dict[str, dict[str, np.ndarray]]
    fc_1h: np.ndarray
    fc_24h: np.ndarray
    replans: int
    timings: dict[str, float]
    fallbacks: int = 0  # live-planner replans that fell back to a heuristic (should be 0)


@dataclass
class BacktestResult:
    intervals: pd.DataFrame  # long: one row per (strategy, interval)
    summary: dict
    monthly: pd.DataFrame


# ---------------------------------------------------------------------------------------------------------
def month_chunks(index: pd.DatetimeIndex, i0: int, i1: int, timezone: str) -> list[tuple[int, int]]:
    """Cut ``[i0, i1)`` at local month starts."""
    local = index[i0:i1].tz_convert(timezone)
    month = local.year * 12 + local.month
    cuts = np.flatnonzero(np.diff(month)) + 1
    edges = [i0, *(i0 + cuts).tolist(), i1]
    # A sliver of a month at either end (e.g. the hour where NEM time and local daylight time differ) is
    # not worth its own process and warm-up: it joins its neighbour.
    if len(edges) > 2 and edges[1] - edges[0] < STEPS_PER_DAY:
        del edges[1]
    if len(edges) > 2 and edges[-1] - edges[-2] < STEPS_PER_DAY:
        del edges[-2]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def _steps(days: float) -> int:
    return int(round(days * STEPS_PER_DAY))


def _simulate_rule(spec: BatterySpec, data: BacktestData, a: int, b: int, action: int) -> dict[str, np.ndarray]:
    """``none`` / ``self_consumption``: the same action every interval, no planner."""
    m = b - a
    tr = {k: np.zeros(m) for k in TRACE_FIELDS}
    soc = spec.soc_initial
    load, solar = data.load_kw, data.solar_kw
    for k in range(m):
        o = apply_step(spec, soc, action, 0.0, 0.0, load[a + k], solar[a + k])
        soc = o.soc
        tr["charge_kw"][k], tr["discharge_kw"][k] = o.charge_kw, o.discharge_kw
        tr["import_kw"][k], tr["export_kw"][k], tr["curtail_kw"][k] = o.import_kw, o.export_kw, o.curtail_kw
        tr["soc"][k] = soc
    tr["action"][:] = action
    return tr


def run_chunk(task: ChunkTask) -> ChunkResult:
    """Replay one chunk for every strategy (worker-process entry point)."""
    data, spec, cfg = task.data, task.spec, task.config
    a, i0, i1 = task.sim_start, data.i0, data.i1
    m = i1 - a
    timings = {"forecast_s": 0.0, "battery_s": 0.0}
    traces: dict[str, dict[str, np.ndarray]] = {}
    t0 = time.perf_counter()
    traces["none"] = _simulate_rule(spec, data, a, i1, NO_BATTERY)
    traces["self_consumption"] = _simulate_rule(spec, data, a, i1, ACTION_CODES["SELF_CONSUMPTION"])
    timings["battery_s"] += time.perf_counter() - t0

    planners = [s for s in PLANNER_STRATEGIES if s in cfg.all_strategies]
    horizon = _steps(cfg.horizon_hours / 24)
    fc = make_forecast(cfg.forecast, data, cfg.forecast_options)
    plans = {s: make_planner(s, spec, horizon, cfg.horizon, cfg.terminal_value, cfg.greedy_every)
             for s in planners}
    tr = {s: {k: np.zeros(m) for k in TRACE_FIELDS} for s in planners}
    soc = dict.fromkeys(planners, spec.soc_initial)
    plan_s = dict.fromkeys(planners, 0.0)
    fc_1h = np.full(m, np.nan)
    fc_24h = np.full(m, np.nan)
    times = list(data.index)
    load, solar = data.load_kw, data.solar_kw
    q, tick = task.progress_queue, 0
    for k in range(m if planners else 0):
        i = a + k
        t1 = time.perf_counter()
        imp, exp = fc.prices(i, horizon)
        fl, fs = fc.load_solar(i, horizon)
        if k + 12 < m and horizon > 12:
            fc_1h[k + 12] = imp[12]
        if k + STEPS_PER_DAY < m and horizon > STEPS_PER_DAY:
            fc_24h[k + STEPS_PER_DAY] = imp[STEPS_PER_DAY]
        t2 = time.perf_counter()
        timings["forecast_s"] += t2 - t1
        for s in planners:
            t3 = time.perf_counter()
            act, c, d, cur = plans[s].first(times[i], imp, exp, fs, fl, soc[s])
            t4 = time.perf_counter()
            plan_s[s] += t4 - t3
            o = apply_step(spec, soc[s], act, c, d, load[i], solar[i], cur)
            soc[s] = o.soc
            t_ = tr[s]
            t_["action"][k], t_["charge_kw"][k], t_["discharge_kw"][k] = act, o.charge_kw, o.discharge_kw
            t_["import_kw"][k], t_["export_kw"][k], t_["curtail_kw"][k] = o.import_kw, o.export_kw, o.curtail_kw
            t_["soc"][k] = o.soc
            timings["battery_s"] += time.perf_counter() - t4
        tick += 1
        if q is not None and tick == STEPS_PER_DAY:
            q.put(tick)
            tick = 0
    if q is not None and (tick or not planners):
        q.put(tick if planners else m)
    traces.update(tr)
    replans = sum(p.solves for p in plans.values())
    keep = slice(i0 - a, m)
    for s in planners:
        timings[f"plan_{s}_s"] = plan_s[s]
    return ChunkResult(
        start=data.index[i0], traces={s: {k: v[keep] for k, v in t.items()} for s, t in traces.items()},
        fc_1h=fc_1h[keep], fc_24h=fc_24h[keep], replans=replans, timings=timings,
        fallbacks=sum(getattr(p, "fallbacks", 0) for p in plans.values()),
    )


def run_perfect_foresight(data: BacktestData, spec: BatterySpec, cfg: BacktestConfig) -> tuple[dict[str, np.ndarray], float]:
    """The bound: sequential full-resolution LPs over ``pf_chunk_days`` blocks (see module docstring); without
    ``cfg.bound``, the baseline (no battery) in its place."""
    t0 = time.perf_counter()
    i0, i1 = data.i0, data.i1
    m = i1 - i0
    if not cfg.bound:
        return _simulate_rule(spec, data, i0, i1, NO_BATTERY), time.perf_counter() - t0
    tr = {k: np.zeros(m) for k in TRACE_FIELDS}
    block, ahead = max(_steps(cfg.pf_chunk_days), 1), _steps(cfg.pf_lookahead_days)
    soc = spec.soc_initial
    for a in range(i0, i1, block):
        b = min(a + block, i1)
        e = min(b + ahead, data.n)
        plan = perfect_foresight_plan(
            spec, data.index[a], data.import_price[a:e], data.export_price[a:e], data.solar_kw[a:e],
            data.load_kw[a:e], soc, cfg.terminal_value,
        )
        p = plan.iloc[: b - a]
        sl = slice(a - i0, b - i0)
        tr["action"][sl] = p["action"].map(ACTION_CODES).to_numpy()
        tr["charge_kw"][sl] = p["battery_charge_kw"].to_numpy()
        tr["discharge_kw"][sl] = p["battery_discharge_kw"].to_numpy()
        tr["import_kw"][sl] = p["grid_import_kw"].to_numpy()
        tr["export_kw"][sl] = p["grid_export_kw"].to_numpy()
        tr["curtail_kw"][sl] = p["curtail_kw"].to_numpy() if "curtail_kw" in p else 0.0
        tr["soc"][sl] = p["soc"].to_numpy()
        soc = float(tr["soc"][b - i0 - 1])
    return tr, time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------------------
def plan_chunks(data: BacktestData, cfg: BacktestConfig) -> list[tuple[int, int, int]]:
    """(sim_start, accounted_start, accounted_end) per local month, in data positions."""
    warm = _steps(cfg.warmup_days)
    out = []
    for k, (a, b) in enumerate(month_chunks(data.index, data.i0, data.i1, data.timezone)):
        out.append((a if k == 0 else max(0, a - warm), a, b))
    return out


def _chunk_task(data: BacktestData, spec: BatterySpec, cfg: BacktestConfig, sim: int, a: int, b: int,
                queue: object = None) -> ChunkTask:
    lo = max(0, sim - _steps(3))  # persistence history
    hi = min(data.n, b + _steps(cfg.horizon_hours / 24))
    part = data.slice(lo, hi, a, b)
    return ChunkTask(data=part, sim_start=sim - lo, spec=spec, config=cfg, progress_queue=queue)


def _progress_bar(total: int, enabled: bool | None):
    show = sys.stderr.isatty() if enabled is None else enabled
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="step", desc="backtest", smoothing=0.1, file=sys.stderr)


def run_backtest(data: BacktestData, spec: BatterySpec, cfg: BacktestConfig,
                 on_progress: Callable[[int], None] | None = None) -> BacktestResult:
    """Replay ``data`` for every strategy in ``cfg`` and account for the real prices."""
    t_start = time.perf_counter()
    make_forecast(cfg.forecast, data, cfg.forecast_options)  # an unknown or unusable model fails now, not in a worker
    chunks = plan_chunks(data, cfg)
    total = sum(b - s for s, _, b in chunks)
    workers = cfg.workers or min(os.cpu_count() or 1, len(chunks) + 1)
    bar = _progress_bar(total, cfg.progress)

    def advance(n: int) -> None:
        if bar is not None:
            bar.update(n)
        if on_progress is not None:
            on_progress(n)

    results: list[ChunkResult] = []
    if workers <= 1 or len(chunks) == 1:
        pf, pf_s = run_perfect_foresight(data, spec, cfg)
        for sim, a, b in chunks:
            queue = _InlineQueue(advance)
            results.append(run_chunk(_chunk_task(data, spec, cfg, sim, a, b, queue)))
        used_workers = 1
    else:
        ctx = mp.get_context("spawn")
        manager = ctx.Manager() if (bar is not None or on_progress is not None) else None
        queue = manager.Queue() if manager is not None else None
        try:
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                pf_future = pool.submit(run_perfect_foresight, data, spec, cfg)
                futures: list[Future] = [pool.submit(run_chunk, _chunk_task(data, spec, cfg, s, a, b, queue))
                                         for s, a, b in chunks]
                while not all(f.done() for f in [pf_future, *futures]):
                    _drain(queue, advance, wait=0.25)
                _drain(queue, advance, wait=0.0)
                results = [f.result() for f in futures]
                pf, pf_s = pf_future.result()
        finally:
            if manager is not None:
                manager.shutdown()
        used_workers = workers
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - t_start
    return _assemble(data, spec, cfg, results, pf, pf_s, elapsed, used_workers, len(chunks))


class _InlineQueue:
    """The in-process stand-in for a progress queue."""

    def __init__(self, fn: Callable[[int], None]) -> None:
        self.fn = fn

    def put(self, n: int) -> None:
        self.fn(n)


def _drain(ticks, advance: Callable[[int], None], wait: float) -> None:
    if ticks is None:
        if wait:
            time.sleep(wait)
        return

    try:
        advance(ticks.get(timeout=wait) if wait else ticks.get_nowait())
        while True:
            advance(ticks.get_nowait())
    except queue.Empty:
        pass


# ---------------------------------------------------------------------------------------------------------
def interval_costs(import_kw: np.ndarray, export_kw: np.ndarray, import_price: np.ndarray,
                   export_price: np.ndarray) -> np.ndarray:
    """$ per interval: what the owner pays for imports minus what exports earn."""
    return (import_kw * import_price - export_kw * export_price) * DT_H


def _assemble(data: BacktestData, spec: BatterySpec, cfg: BacktestConfig, results: list[ChunkResult],
              pf: dict[str, np.ndarray], pf_s: float, elapsed: float, workers: int, n_chunks: int) -> BacktestResult:
    idx = data.window
    m = len(idx)
    sl = slice(data.i0, data.i1)
    imp_p, exp_p, rrp = data.import_price[sl], data.export_price[sl], data.rrp[sl]
    traces = {s: {k: np.concatenate([r.traces[s][k] for r in results]) for k in TRACE_FIELDS}
              for s in cfg.all_strategies if s != "perfect_foresight"}
    traces["perfect_foresight"] = pf
    fc_1h = np.concatenate([r.fc_1h for r in results])
    fc_24h = np.concatenate([r.fc_24h for r in results])
    spike = np.where(np.isfinite(rrp), rrp >= cfg.spike_threshold_per_mwh, imp_p >= cfg.spike_threshold_per_mwh / 1000)
    local = idx.tz_convert(data.timezone)
    month = local.strftime("%Y-%m")
    base_cost = interval_costs(traces["none"]["import_kw"], traces["none"]["export_kw"], imp_p, exp_p)
    frames = []
    names = {**ACTION_NAMES, NO_BATTERY: "NONE"}
    for s in cfg.all_strategies:
        t = traces[s]
        cost = interval_costs(t["import_kw"], t["export_kw"], imp_p, exp_p)
        frames.append(pd.DataFrame({
            "interval_start": idx, "strategy": s, "month": month,
            "action": pd.Series(t["action"].astype(int)).map(names).to_numpy(),
            "import_price": imp_p, "export_price": exp_p, "rrp": rrp,
            "load_kw": data.load_kw[sl], "solar_kw": data.solar_kw[sl],
            "battery_charge_kw": t["charge_kw"], "battery_discharge_kw": t["discharge_kw"],
            "grid_import_kw": t["import_kw"], "grid_export_kw": t["export_kw"], "curtail_kw": t["curtail_kw"],
            "soc": t["soc"], "cost": cost, "baseline_cost": base_cost, "savings": base_cost - cost,
            "wear_cost": 0.5 * spec.wear_cost_per_kwh * (t["charge_kw"] + t["discharge_kw"]) * DT_H,
            "fc_import_1h": fc_1h, "fc_import_24h": fc_24h, "spike": spike,
        }))
    intervals = pd.concat(frames, ignore_index=True)
    replans = sum(r.replans for r in results)
    timings: dict[str, float] = {}
    for r in results:
        for k, v in r.timings.items():
            timings[k] = timings.get(k, 0.0) + v
    timings["perfect_foresight_s"] = pf_s
    monthly = monthly_table(intervals, cfg.chosen)
    summary = build_summary(intervals, cfg, m, replans, elapsed, timings, workers, n_chunks, monthly, data)
    summary["planner_fallbacks"] = sum(r.fallbacks for r in results)
    return BacktestResult(intervals=intervals, summary=summary, monthly=monthly)


def monthly_table(intervals: pd.DataFrame, chosen: str) -> pd.DataFrame:
    """Cost per (month, strategy), and the chosen strategy's savings and capture ratio per month."""
    cost = intervals.pivot_table(index="month", columns="strategy", values="cost", aggfunc="sum")
    out = cost.copy()
    out.columns = [f"cost_{c}" for c in out.columns]
    base, pf = cost["none"], cost["perfect_foresight"]
    for s in cost.columns:
        if s != "none":
            out[f"savings_{s}"] = base - cost[s]
    out["capture_ratio"] = [_ratio(b - c, b - p) for b, c, p in zip(base, cost[chosen], pf, strict=True)]
    return out.reset_index()


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den > 1e-9 else None


def build_summary(intervals: pd.DataFrame, cfg: BacktestConfig, m: int, replans: int, elapsed: float,
                  timings: dict[str, float], workers: int, n_chunks: int, monthly: pd.DataFrame,
                  data: BacktestData) -> dict:
    by = intervals.groupby("strategy", sort=False)
    costs = by["cost"].sum()
    base, pf, chosen = float(costs["none"]), float(costs["perfect_foresight"]), cfg.chosen
    cost = float(costs[chosen])
    sc = float(costs["self_consumption"])
    energy = by[["grid_import_kw", "grid_export_kw", "battery_charge_kw", "battery_discharge_kw"]].sum() * DT_H
    per = {
        s: {
            "cost": round(float(costs[s]), 4),
            "savings": round(base - float(costs[s]), 4),
            "capture_ratio": _round(_ratio(base - float(costs[s]), base - pf)),
            "wear_cost": round(float(by["wear_cost"].sum()[s]), 4),
            "soc_end": round(float(by["soc"].last()[s]), 4),
            "import_kwh": round(float(energy.loc[s, "grid_import_kw"]), 3),
            "export_kwh": round(float(energy.loc[s, "grid_export_kw"]), 3),
            "charge_kwh": round(float(energy.loc[s, "battery_charge_kw"]), 3),
            "discharge_kwh": round(float(energy.loc[s, "battery_discharge_kw"]), 3),
        }
        for s in costs.index
    }
    return {
        "site_timezone": data.timezone,
        "start": data.window[0].isoformat(),
        "end": (data.window[-1] + pd.Timedelta(minutes=5)).isoformat(),
        "intervals": int(m),
        "replans": int(replans),
        "elapsed_s": round(elapsed, 3),
        "replans_per_s": round(replans / elapsed, 1) if elapsed > 0 else None,
        "strategy": chosen,
        "forecast_model": cfg.forecast,
        "horizon": cfg.horizon,
        "baseline_cost": round(base, 4),
        "self_consumption_cost": round(sc, 4),
        "cost": round(cost, 4),
        "perfect_foresight_cost": round(pf, 4),
        "savings": round(base - cost, 4),
        "capture_ratio": _round(_ratio(base - cost, base - pf)),
        "strategies": per,
        "monthly": [{k: _round(v) if isinstance(v, float) else v for k, v in row.items()}
                    for row in monthly.to_dict(orient="records")],
        "profile_s": {k: round(v, 3) for k, v in sorted(timings.items())},
        "workers": workers,
        "chunks": n_chunks,
        "notes": list(data.notes),
    }


def _round(v: float | None, nd: int = 4) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), nd)


def with_strategies(cfg: BacktestConfig, strategies: tuple[str, ...]) -> BacktestConfig:
    return replace(cfg, strategies=strategies)
