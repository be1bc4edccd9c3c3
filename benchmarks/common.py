"""Shared benchmark helpers: the machine description, real price series and the real load/solar profile.

Prices (from ``../shared/data/real``, never copied into the repo):
* AEMO VIC1 5-min RRP → retail import/export with the default ``RetailMapping`` (network adder, GST);
* Amber SA 5-min ``general`` (import) and ``feedIn`` (export = −perKwh, paid when negative) in c/kWh;
* Octopus Agile import region J and Agile Outgoing region C (the only export series shipped), p/kWh,
  half-hourly, held over six 5-min intervals.
Load and solar: Ausgrid customer 12 (30-min mean kW, Sydney local time, 2011-07..2012-06), looked up by
local month-day and half-hour; for UK prices the profile is shifted six months to keep the season.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from powersync_pipelines.config import RetailMapping
from powersync_pipelines.paths import DATA_DIR, shared_real_data
from powersync_pipelines.prices.history import read_aemo_price_and_demand, retail_prices

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PROFILE_CSV = DATA_DIR / "profiles" / "ausgrid_customer12.csv"
_LEAP_CUM = np.cumsum([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30])


def machine() -> dict:
    """What the numbers were measured on."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import highspy

    info = {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "highspy": _version("highspy"),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    del highspy
    return info


def _version(pkg: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(pkg)
    except PackageNotFoundError:
        return "?"


def median_ms(xs: list[float]) -> float:
    return round(statistics.median(xs) * 1000.0, 3)


def p95_ms(xs: list[float]) -> float:
    return round(float(np.percentile(xs, 95)) * 1000.0, 3)


def write_results(name: str, payload: dict) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"{name}.json"
    out.write_text(json.dumps(payload, indent=2, default=str))
    return out


def real_root() -> Path:
    root = shared_real_data()
    if root is None:
        raise SystemExit("benchmarks need ../shared/data/real (real AEMO/Amber/Octopus prices)")
    return root


# ----- prices: DataFrame indexed by UTC interval start (5-min), columns import_price, export_price ($/kWh) -----
def aemo_vic1(months: list[str]) -> pd.DataFrame:
    root = real_root() / "aemo" / "price_and_demand" / "VIC1"
    raw = read_aemo_price_and_demand([root / f"PRICE_AND_DEMAND_{m}_VIC1.csv" for m in months])
    imp, exp = retail_prices(raw["rrp"], RetailMapping())
    return pd.DataFrame({"import_price": imp, "export_price": exp}, index=raw.index)


def amber_sa(days: list[str]) -> pd.DataFrame:
    root = real_root() / "amber" / "enkit-matlab" / "sa_prices_5min"
    rows = []
    for d in days:
        for x in json.loads((root / f"{d}.json").read_text()):
            if x["channelType"] in ("general", "feedIn"):
                rows.append((pd.Timestamp(x["startTime"]).floor("5min"), x["channelType"], float(x["perKwh"]) / 100.0))
    df = pd.DataFrame(rows, columns=["t", "ch", "v"]).pivot_table(index="t", columns="ch", values="v", aggfunc="last")
    out = pd.DataFrame({"import_price": df["general"], "export_price": -df["feedIn"]}).sort_index()
    out.index = pd.DatetimeIndex(out.index).tz_convert("UTC")
    out.index.name = "interval_start"
    return out.asfreq("5min").ffill()


def octopus_agile(start: str, end: str) -> pd.DataFrame:
    root = real_root() / "octopus"
    imp = pd.read_csv(root / "agile_import" / "csv_agile_J_South_Eastern_England.csv")
    imp.index = pd.to_datetime(imp.pop("timestamp"), utc=True)
    exp = pd.read_csv(root / "agile_outgoing" / "csv_agileoutgoing_C_London.csv")
    exp.index = pd.to_datetime(exp.iloc[:, 0], utc=True)
    df = pd.DataFrame({"import_price": imp["price"] / 100.0, "export_price": exp.iloc[:, -1] / 100.0}).sort_index()
    df = df[~df.index.duplicated()].loc[start:end].dropna()
    idx = pd.date_range(df.index[0], df.index[-1] + pd.Timedelta(minutes=25), freq="5min", name="interval_start")
    return df.reindex(idx).ffill()


# ----- load / solar -----
_PROFILE: np.ndarray | None = None


def _profile_table() -> np.ndarray:
    """[366 leap-year days, 48 half-hours, 2 (load, solar)] from the Ausgrid customer 12 year."""
    global _PROFILE
    if _PROFILE is None:
        df = pd.read_csv(PROFILE_CSV, parse_dates=["local_time"])
        t = df["local_time"]
        doy = _LEAP_CUM[t.dt.month.to_numpy() - 1] + t.dt.day.to_numpy() - 1
        hh = t.dt.hour.to_numpy() * 2 + t.dt.minute.to_numpy() // 30
        table = np.full((366, 48, 2), np.nan)
        table[doy, hh, 0] = df["load_kw"].to_numpy()
        table[doy, hh, 1] = df["solar_kw"].to_numpy()
        # 29 Feb exists in 2012; fill any hole from the previous day
        for d in range(366):
            if np.isnan(table[d]).any():
                table[d] = table[d - 1]
        _PROFILE = table
    return _PROFILE


def load_solar(index: pd.DatetimeIndex, tz: str = "Australia/Sydney", shift_months: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Load and solar kW on ``index`` (UTC) from the profile at the same local month-day and half-hour."""
    local = index.tz_convert(tz)
    if shift_months:
        local = local + pd.DateOffset(months=shift_months)
    doy = _LEAP_CUM[local.month.to_numpy() - 1] + local.day.to_numpy() - 1
    hh = local.hour.to_numpy() * 2 + local.minute.to_numpy() // 30
    t = _profile_table()
    return t[doy, hh, 0].copy(), t[doy, hh, 1].copy()


def dataset(name: str) -> tuple[pd.DataFrame, str, int]:
    """(prices with load_kw/solar_kw columns, local tz, months of profile shift) for a named real dataset."""
    if name == "aemo_vic1_2024_01":
        df, tz, shift = aemo_vic1(["202401"]), "Australia/Sydney", 0
    elif name == "aemo_vic1_2024_10":
        df, tz, shift = aemo_vic1(["202410"]), "Australia/Sydney", 0
    elif name == "amber_sa_2025_01":
        days = [d.strftime("%Y%m%d") for d in pd.date_range("2025-01-01", "2025-01-31")]
        df, tz, shift = amber_sa(days), "Australia/Adelaide", 0
    elif name == "octopus_j_2024_01":
        df, tz, shift = octopus_agile("2024-01-01", "2024-01-31 23:30"), "Europe/London", 6
    else:
        raise KeyError(name)
    load, solar = load_solar(df.index, tz if tz != "Australia/Adelaide" else "Australia/Adelaide", shift)
    df = df.assign(load_kw=load, solar_kw=solar)
    return df, tz, shift
