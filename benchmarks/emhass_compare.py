"""Run EMHASS headless on problems in our JSON shape; runs INSIDE the EMHASS venv (benchmarks/.venvs/emhass).

Usage: ``<emhass venv python> benchmarks/emhass_compare.py problems.json results.json``. It imports only
EMHASS and its own dependencies (never ``powersync_pipelines``), following the headless recipe in
``reference/peers.md`` §11 and its fairness rules:

* AC charge limit = our ``max_charge_kw``; EMHASS caps AC discharge at eta_d x its discharge max, so we pass
  ``max_discharge_kw / eta_d`` to get the same AC limit;
* SOC bounds [reserve, 1] on end-of-step SOC, soc_init/soc_final given (ours fixes the same final SOC);
* ``costfun="profit"`` (buy/sell), no degradation weights, curtailment enabled, ``set_nodischarge_to_grid``
  False, ``mip_rel_gap`` 0 (exact), one HiGHS thread;
* the bill is recomputed from ``P_grid_pos``/``P_grid_neg``, never taken from the objective.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _confs(p: dict, n: int, step_min: int):
    import pytz

    b = p["battery"]
    retrieve_hass_conf = {
        "optimization_time_step": pd.to_timedelta(step_min, "minutes"),
        "time_zone": pytz.timezone("UTC"),
        "sensor_power_photovoltaics": "sensor.pv",
        "sensor_power_load_no_var_loads": "sensor.load",
    }
    optim_conf = {
        "set_use_battery": True,
        "number_of_deferrable_loads": 0,
        "nominal_power_of_deferrable_loads": [],
        "operating_hours_of_each_deferrable_load": [],
        "start_timesteps_of_each_deferrable_load": [],
        "end_timesteps_of_each_deferrable_load": [],
        "minimum_power_of_deferrable_loads": [],
        "treat_deferrable_load_as_semi_cont": [],
        "set_deferrable_load_single_constant": [],
        "set_deferrable_startup_penalty": [],
        "weight_battery_discharge": 0.0,
        "weight_battery_charge": 0.0,
        "set_nocharge_from_grid": False,
        "set_nodischarge_to_grid": False,
        "set_battery_dynamic": False,
        "set_total_pv_sell": False,
        "lp_solver_mip_rel_gap": 0.0,
        "lp_solver_timeout": 180,
        "num_threads": 1,
        "delta_forecast_daily": pd.Timedelta(days=2),
    }
    big = 1e6
    plant_conf = {
        "inverter_is_hybrid": False,
        "compute_curtailment": True,
        "maximum_power_from_grid": (p.get("import_limit_kw") or big / 1000) * 1000,
        "maximum_power_to_grid": (p.get("export_limit_kw") or big / 1000) * 1000,
        "number_of_batteries": 1,
        "battery_nominal_energy_capacity": b["capacity_kwh"] * 1000,
        "battery_charge_power_max": b["max_charge_kw"] * 1000,
        "battery_discharge_power_max": b["max_discharge_kw"] * 1000 / b["discharge_efficiency"],
        "battery_charge_efficiency": b["charge_efficiency"],
        "battery_discharge_efficiency": b["discharge_efficiency"],
        "battery_minimum_state_of_charge": b["reserve"],
        "battery_maximum_state_of_charge": 1.0,
        "battery_target_state_of_charge": p.get("soc_final", b["soc_initial"]),
    }
    return retrieve_hass_conf, optim_conf, plant_conf


def run_one(p: dict, opt_cache: dict) -> dict:
    import emhass
    from emhass.optimization import Optimization

    n = len(p["import_price"])
    step = int(p.get("interval_minutes", 5))
    logger = logging.getLogger("emhass-bench")
    logger.setLevel(logging.ERROR)
    rh, oc, pc = _confs(p, n, step)
    key = json.dumps([pc, n, step], sort_keys=True, default=str)
    first = key not in opt_cache
    t_build = time.perf_counter()
    if first:
        opt_cache[key] = Optimization(
            rh, oc, pc, "unit_load_cost", "unit_prod_price", "profit", {"root_path": Path(emhass.__file__).parent}, logger,
            opt_time_delta=24, num_timesteps=n,
        )
    opt = opt_cache[key]
    build_s = time.perf_counter() - t_build
    idx = pd.date_range(pd.Timestamp(p["start"]), periods=n, freq=f"{step}min")
    imp = np.asarray(p["import_price"], float)
    exp = np.asarray(p["export_price"], float)
    pv_w = np.asarray(p["solar_kw"], float) * 1000
    load_w = np.asarray(p["load_kw"], float) * 1000
    data = pd.DataFrame({"unit_load_cost": imp, "unit_prod_price": exp}, index=idx)
    soc0 = p["battery"]["soc_initial"]
    socf = p.get("soc_final", soc0)
    stage: dict[str, float] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    out = opt.perform_optimization(data, pv_w, load_w, imp, exp, soc_init=soc0, soc_final=socf, stage_times=stage)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    dt = step / 60
    grid_pos = out["P_grid_pos"].to_numpy() / 1000
    grid_neg = -out["P_grid_neg"].to_numpy() / 1000
    bill = float(np.sum((imp * grid_pos - exp * grid_neg) * dt))
    status = str(out["optim_status"].iloc[0]) if "optim_status" in out else "?"
    stats = getattr(getattr(opt, "prob", None), "solver_stats", None)
    solver_time = getattr(stats, "solve_time", None)
    return {
        "status": status,
        "cost": bill,
        "wall_s": wall + build_s,
        "cpu_s": cpu,
        "build_s": build_s,
        "first_call": first,
        "solver_time_s": solver_time,
        "stage_times": stage,
        "final_soc": float(out["SOC_opt"].iloc[-1]),
        "simultaneous_import_export": int(np.sum((grid_pos > 1e-6) & (grid_neg > 1e-6))),
    }


def main() -> int:
    """Warm-up (CVXPY compile) on the first problem, then per problem: a call on new data with the cached
    ``Optimization`` object (EMHASS' MPC path) and a second call on the same data (its re-solve path)."""
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    problems = json.loads(src.read_text())
    cache: dict = {}
    results = []
    warmup = None
    try:
        warmup = run_one(problems[-1], cache)  # CVXPY compile on other data than problem 0
    except Exception as e:  # noqa: BLE001 - report the failure in the JSON
        warmup = {"error": f"{type(e).__name__}: {e}"}
    for p in problems:
        try:
            new_data = run_one(p, cache)
            same_data = run_one(p, cache)
            results.append({"new_data": new_data, "same_data": same_data})
        except Exception as e:  # noqa: BLE001 - report every failure in the JSON, do not stop the batch
            results.append({"error": f"{type(e).__name__}: {e}"})
    from importlib.metadata import version

    dst.write_text(json.dumps({"emhass_version": version("emhass"), "warmup": warmup, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
