"""EV charging modes and demand charges on real AEMO VIC1 prices (results: benchmarks/results/ev.json).

1. **EV modes, one session a day for a week** (a summer and a winter week): overnight, the car plugs in at 18:00
   local and leaves at 07:30 with 20 kWh more in its battery; daytime, 09:00 -> 17:00 with 10 kWh (7.36 kW,
   1 phase 32 A, 90 % charger efficiency); the home has the demo battery (13.5 kWh, 5 kW, SOC 50 % at plug-in)
   and the real Ausgrid household profile with its rooftop solar. Each session is planned on 24 h of the
   real prices (perfect foresight of the prices, the same for every mode). Reported per mode: the car's cost
   (site energy cost with the car minus without it, the change in stored energy valued at the plan's terminal
   value), $/kWh at the car, and the planning time.
2. **Demand charge avoided on a real month**: 15:00-21:00 local weekdays, 10 $/kW-month on the peak 30-min
   import. Day by day, a 48-h full-resolution plan is made at local midnight and its first 24 h executed
   (SOC carried over), once ignoring the demand charge and once with it (starting from the month's peak so
   far). Reported: the billed peak and demand charge of each, the energy cost each paid, and the net saving.
3. **Demand charge in the live planner, a week**: the shared warm ``Planner`` (tiered 48-h horizon, as the
   planning cycle runs it) replans every 5 minutes on the real prices and the household profile, executing
   each plan's first interval, once without and once with the demand charge (the month's peak so far from
   the realised imports). Reported as in 2, plus the replans' median time and how many were warm.

Run: ``.venv/bin/python -m benchmarks.bench_ev`` (a few seconds per week, about a minute per month).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from benchmarks.common import aemo_vic1, load_solar, machine, median_ms, write_results
from powersync_pipelines.config.demand import DemandChargeConfig
from powersync_pipelines.demand import avoided_demand_cost, demand_charge_for, window_mask
from powersync_pipelines.ev import ChargerLimits, EvSession, plan_session
from powersync_pipelines.optimizer import BatteryParams, OptimizationProblem, Planner, PlannerSettings, solve
from powersync_pipelines.optimizer.result import energy_cost

TZ = "Australia/Melbourne"
BATTERY = dict(capacity_kwh=13.5, max_charge_kw=5.0, max_discharge_kw=5.0, charge_efficiency=0.95,
               discharge_efficiency=0.95, reserve=0.1)
OPTS = {"export_limit_kw": 5.0, "import_limit_kw": 15.0}
CHARGER = ChargerLimits(6, 32, 1, 230.0)
MODES = ("solar_only", "solar_preferred", "cost_optimized", "time_critical")
WEEKS = {"2024-02-12": ["202402"], "2024-06-10": ["202406"]}  # summer (13 Feb spike) and winter
DEMAND = DemandChargeConfig(start="15:00", end="21:00", weekdays=["mon", "tue", "wed", "thu", "fri"],
                            price_per_kw_month=10.0)
MONTHS = ["202402", "202406"]


def _problem(prices: pd.DataFrame, start: pd.Timestamp, n: int, soc: float, solar_scale: float = 1.0) -> OptimizationProblem:
    idx = pd.date_range(start, periods=n, freq="5min")
    p = prices.reindex(idx).ffill()
    load, solar = load_solar(idx, TZ)
    return OptimizationProblem(start, p["import_price"].to_numpy(), p["export_price"].to_numpy(), solar * solar_scale, load,
                               BatteryParams(soc_initial=soc, **BATTERY), **OPTS)


# (plug-in, departure, kWh at the car, solar scale): the profile's PV peaks at 0.9 kW, below one phase's 6 A
# (1.38 kW), so the daytime session also runs with the PV scaled to the demo site's 6.6 kW
SESSIONS = {"overnight": ("18:00", "07:30", 20.0, 1.0), "daytime": ("09:00", "17:00", 10.0, 1.0),
            "daytime_6.6kw_pv": ("09:00", "17:00", 10.0, 6.6 / 0.9)}


def ev_week(first_day: str, months: list[str], kind: str = "overnight") -> dict:
    prices = aemo_vic1(months)
    per_mode: dict[str, dict] = {m: {"ev_cost": 0.0, "energy_kwh": 0.0, "plan_ms": [], "days_met": 0} for m in MODES}
    days = []
    for d in pd.date_range(first_day, periods=7, freq="D"):
        a, z, kwh, scale = SESSIONS[kind]
        plug = pd.Timestamp(f"{d.date()} {a}", tz=TZ).tz_convert("UTC")
        dep = pd.Timestamp(f"{d.date()} {z}", tz=TZ).tz_convert("UTC")
        if dep <= plug:
            dep = pd.Timestamp(f"{(d + pd.Timedelta(days=1)).date()} {z}", tz=TZ).tz_convert("UTC")
        p = _problem(prices, plug, 288, 0.5, scale)
        base = solve(p, horizon="full")
        s = EvSession(plug, dep, kwh, CHARGER, 0.9, "cost_optimized")
        row = {"day": str(d.date())}
        for m in MODES:
            t0 = time.perf_counter()
            plan = plan_session(p, s, m, base=base)
            secs = time.perf_counter() - t0
            agg = per_mode[m]
            agg["ev_cost"] += plan.ev_cost
            agg["energy_kwh"] += plan.energy_kwh
            agg["plan_ms"].append(secs)
            agg["days_met"] += int(plan.target_met)
            row[m] = round(plan.ev_cost, 4)
        days.append(row)
    out = {}
    for m, a in per_mode.items():
        out[m] = {"ev_cost": round(a["ev_cost"], 3), "energy_kwh": round(a["energy_kwh"], 2),
                  "cost_per_kwh": round(a["ev_cost"] / a["energy_kwh"], 4) if a["energy_kwh"] > 0 else None,
                  "days_target_met": a["days_met"], "median_plan_ms": round(median_ms(a["plan_ms"]), 1)}
    a, z, kwh, scale = SESSIONS[kind]
    return {"week_from": first_day, "session": f"{kind}: {a} -> {z} local, {kwh:g} kWh at the car, 7.36 kW",
            "pv_peak_kw": round(0.9 * scale, 2),
            "modes": out, "days": days}


def _window_peak(index: pd.DatetimeIndex, imp: np.ndarray) -> pd.Series:
    s = pd.Series(imp, index=index).resample("30min").mean()
    return s[window_mask(s.index, DEMAND, TZ)]


def demand_month(month: str) -> dict:
    prices = aemo_vic1([_shift(month, -1), month, _shift(month, 1)])  # local midnight of day 1 is in the month before (UTC)
    first = pd.Timestamp(f"{month[:4]}-{month[4:]}-01", tz=TZ)
    days = pd.date_range(first, first + pd.offsets.MonthEnd(0), freq="D")
    results = {}
    for variant in ("without", "with"):
        soc, peak_so_far = 0.5, 0.0
        imps, idxs, cost = [], [], 0.0
        for d in days:
            start = d.tz_convert("UTC")
            p = _problem(prices, start, 576, soc)
            if variant == "with":
                p.demand_charge = demand_charge_for(p.index(), DEMAND, TZ, peak_so_far)
            r = solve(p, horizon="full")
            df = r.intervals.iloc[: int(round((d + pd.Timedelta(days=1) - d).total_seconds() / 300))]
            imp = df["grid_import_kw"].to_numpy()
            cost += float(energy_cost(imp, df["grid_export_kw"].to_numpy(), df["import_price"].to_numpy(),
                                      df["export_price"].to_numpy(), 5 / 60).sum())
            soc = float(df["soc"].iloc[-1])
            imps.append(imp)
            idxs.append(df.index)
            w = _window_peak(df.index, imp)
            if len(w):
                peak_so_far = max(peak_so_far, float(w.max()))
        index = idxs[0].append(idxs[1:])
        peak = float(_window_peak(index, np.concatenate(imps)).max())
        results[variant] = {"energy_cost": round(cost, 2), "peak_kw": round(peak, 3),
                            "demand_charge": round(peak * DEMAND.price_per_kw_month, 2)}
    idx = pd.date_range(days[0].tz_convert("UTC"), days[-1].tz_convert("UTC") + pd.Timedelta(days=1), freq="5min", inclusive="left")
    load, solar = load_solar(idx, TZ)
    base_peak = float(_window_peak(idx, np.maximum(load - solar, 0.0)).max())
    w, wo = results["with"], results["without"]
    avoided = avoided_demand_cost(wo["peak_kw"], w["peak_kw"], 0.0, DEMAND.price_per_kw_month)
    return {"month": month, "tariff": "15:00-21:00 weekdays, 10 $/kW-month on the peak 30-min import",
            "no_battery_peak_kw": round(base_peak, 3), **{f"plan_{k}_demand_charge": v for k, v in results.items()},
            "demand_charge_avoided": round(avoided, 2),
            "extra_energy_cost": round(w["energy_cost"] - wo["energy_cost"], 2),
            "net_saving": round(avoided - (w["energy_cost"] - wo["energy_cost"]), 2)}


def demand_live_week(first_day: str, months: list[str]) -> dict:
    """A week of 5-minute warm replans by the live planner, without and with the demand charge."""
    prices = aemo_vic1(months)
    start = pd.Timestamp(first_day, tz=TZ).tz_convert("UTC")
    steps = 7 * 288
    settings = PlannerSettings(**{k: v for k, v in BATTERY.items()}, export_limit_kw=OPTS["export_limit_kw"],
                               import_limit_kw=OPTS["import_limit_kw"])
    results = {}
    for variant in ("without", "with"):
        planner = Planner(settings)
        soc, peak_so_far = 0.5, 0.0
        imp = np.zeros(steps)
        cost, times, warm = 0.0, [], 0
        idx = pd.date_range(start, periods=steps, freq="5min")
        for k in range(steps):
            t = idx[k]
            p = _problem(prices, t, settings.horizon_steps, soc)
            dc = None
            if variant == "with":
                if k >= 6 and t.minute % 30 == 0:  # a half-hour just ended: it counts towards the peak so far
                    ended = _window_peak(idx[k - 6 : k], imp[k - 6 : k])
                    peak_so_far = max([peak_so_far, *ended.to_list()])
                dc = demand_charge_for(p.index(), DEMAND, TZ, peak_so_far)
            t0 = time.perf_counter()
            r = planner.plan(t, p.import_price, p.export_price, p.solar_kw, p.load_kw, soc, demand_charge=dc)
            times.append(time.perf_counter() - t0)
            warm += int(r.warm)
            imp[k] = r.grid_import_kw[0]
            cost += float(energy_cost(r.grid_import_kw[:1], r.grid_export_kw[:1], p.import_price[:1],
                                      p.export_price[:1], 5 / 60).sum())
            soc = float(r.soc[0])
        peak = float(_window_peak(idx, imp).max())
        results[variant] = {"energy_cost": round(cost, 2), "peak_kw": round(peak, 3),
                            "demand_charge_if_month": round(peak * DEMAND.price_per_kw_month, 2),
                            "median_replan_ms": round(float(np.median(times)) * 1000, 2), "warm_replans": warm,
                            "replans": steps}
    w, wo = results["with"], results["without"]
    avoided = avoided_demand_cost(wo["peak_kw"], w["peak_kw"], 0.0, DEMAND.price_per_kw_month)
    return {"week_from": first_day, "planner": "live Planner (tiered, warm), 5-min replans, first interval executed",
            **{f"plan_{k}_demand_charge": v for k, v in results.items()}, "demand_charge_avoided": round(avoided, 2),
            "extra_energy_cost": round(w["energy_cost"] - wo["energy_cost"], 2)}


def _shift(month: str, k: int) -> str:
    t = pd.Period(f"{month[:4]}-{month[4:]}", freq="M") + k
    return t.strftime("%Y%m")


def main() -> None:
    weeks = [ev_week(d, m, kind) for kind in SESSIONS for d, m in WEEKS.items()]
    months = [demand_month(m) for m in MONTHS]
    live = [demand_live_week(d, m) for d, m in WEEKS.items()]
    payload = {"machine": machine(), "ev_weeks": weeks, "demand_months": months, "demand_live_weeks": live}
    path = write_results("ev", payload)
    for w in weeks:
        print(f"EV week from {w['week_from']}, {w['session']}:")
        for m, r in w["modes"].items():
            print(f"  {m:16s} ${r['ev_cost']:8.2f}  {r['energy_kwh']:6.1f} kWh  {r['cost_per_kwh']} $/kWh  "
                  f"met {r['days_target_met']}/7  {r['median_plan_ms']} ms")
    for m in months:
        print(f"demand {m['month']}: without {m['plan_without_demand_charge']}, with {m['plan_with_demand_charge']}, "
              f"avoided ${m['demand_charge_avoided']}, extra energy ${m['extra_energy_cost']}, net ${m['net_saving']}")
    for lw in live:
        print(f"live demand week from {lw['week_from']}: without {lw['plan_without_demand_charge']}, "
              f"with {lw['plan_with_demand_charge']}, avoided ${lw['demand_charge_avoided']}, "
              f"extra energy ${lw['extra_energy_cost']}")
    print(f"written {path}")


if __name__ == "__main__":
    main()
