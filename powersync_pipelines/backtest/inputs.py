"""Read prices, load and solar from the files a user has, check them, and put them on one 5-minute grid.

Price formats: ``aemo`` (AEMO price-and-demand CSVs, wholesale RRP mapped to retail with the site's
``provider.retail``: import = max(floor, (RRP/1000 + network adder) x (1 + GST)), export = RRP/1000 x factor -
fee), ``normalized`` (the product's CSV), ``amber`` (``/prices`` JSON) and ``octopus`` (Agile CSV/JSON); the last
two use the prices package's own parsers. Half-hourly prices are held for the six 5-minute slots.

Checks, each failing with the file and the problem named: timestamps off the 5-minute grid, gaps longer
than ``max_gap`` (shorter ones are forward-filled and counted), loads/solar that look like W or kWh rather
than kW, negative powers, series that do not cover the window.
"""

from __future__ import annotations

import glob
import importlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import RetailMapping, SiteConfig
from ..paths import resolve_data_path
from ..prices.history import PriceFileError, aemo_file_price_frame, read_normalized_csv
from ..timegrid import STEP, STEPS_PER_DAY
from .data import BacktestData
from .errors import BacktestInputError
from .profile import map_profile, read_profile

PRICE_FORMATS = ("normalized", "aemo", "amber", "octopus")
HISTORY = pd.Timedelta(days=3)  # persistence forecasts look back this far
LOOKAHEAD = pd.Timedelta(days=2)  # plans near the window end still see a 48 h horizon
MAX_GAP = pd.Timedelta(minutes=30)  # longer price gaps are refused, shorter ones forward-filled


def expand_price_paths(specs: Iterable[str | Path]) -> list[Path]:
    """``--prices`` values: files, globs or folders (every csv/json inside), in name order, duplicates dropped."""
    out: list[Path] = []
    for spec in specs:
        s = str(spec)
        p = Path(s)
        if p.is_dir():
            found = sorted([*p.glob("*.csv"), *p.glob("*.json")])
        elif any(ch in s for ch in "*?["):
            found = sorted(Path(x) for x in glob.glob(s))
        else:
            found = [p]
        if not found:
            raise BacktestInputError(f"--prices {s}: no files match")
        for f in found:
            if not f.exists():
                raise BacktestInputError(f"price file not found: {f}")
            if f not in out:
                out.append(f)
    return out


_MONTH_FILE = re.compile(r"_(\d{4})(\d{2})_[A-Z]+\d?\.csv$", re.IGNORECASE)


def select_month_files(paths: Sequence[Path], start: pd.Timestamp | None, end: pd.Timestamp | None) -> list[Path]:
    """From monthly files named like AEMO's (``..._YYYYMM_REGION.csv``), keep the months a window needs
    (one month either side, for history, look-ahead and the NEM-time/local-time offset); others pass."""
    if start is None and end is None:
        return list(paths)
    lo = (pd.Timestamp(start).tz_convert("UTC") - pd.Timedelta(days=40)) if start is not None else None
    hi = (pd.Timestamp(end).tz_convert("UTC") + pd.Timedelta(days=40)) if end is not None else None
    keep = []
    for p in paths:
        m = _MONTH_FILE.search(p.name)
        if m:
            first = pd.Timestamp(year=int(m.group(1)), month=int(m.group(2)), day=1, tz="UTC")
            if (lo is not None and first + pd.Timedelta(days=31) < lo) or (hi is not None and first > hi):
                continue
        keep.append(p)
    return keep or list(paths)


def detect_format(path: Path) -> str:
    """Guess a price file's format from its first bytes (the user can always say ``--price-format``)."""
    head = path.open("rb").read(2048).decode("utf-8", "replace").lstrip("\ufeff").lstrip()
    if head.startswith(("[", "{")):
        return "octopus" if '"value_inc_vat"' in head or '"results"' in head else "amber"
    first = head.splitlines()[0] if head else ""
    if "SETTLEMENTDATE" in first and "RRP" in first:
        return "aemo"
    if "interval_start" in first and "import_price" in first:
        return "normalized"
    return "octopus"


def _provider_parser(module: str, candidates: Sequence[str]):
    """The prices package's own file parser (written by the prices helper); never a second copy here."""
    try:
        mod = importlib.import_module(f"powersync_pipelines.prices.{module}")
    except ModuleNotFoundError:
        mod = None
    for name in candidates:
        fn = getattr(mod, name, None) if mod else None
        if callable(fn):
            return fn
    raise BacktestInputError(f"--price-format {module}: the {module} file parser is not available in this build")


def read_price_files(paths: Sequence[Path], fmt: str | None, retail: RetailMapping, region: str | None,
                     export_paths: Sequence[Path] = ()) -> pd.DataFrame:
    """All price files as one price frame (``import_price``, ``export_price`` $/kWh, ``rrp`` $/MWh or NaN).

    Forecast rows some files carry (Amber captures) are not realised prices: they go to
    ``frame.attrs["published"]`` (issue time -> forecast frame) for the ``provider`` forecast model.
    ``export_paths``: Octopus export (Agile Outgoing) rates; without them Octopus export pays nothing.
    """
    if not paths:
        raise BacktestInputError("no price files given")
    if export_paths and (fmt or detect_format(paths[0])) != "octopus":
        raise BacktestInputError("separate export price files are only read for --price-format octopus")
    fmts = {fmt or detect_format(p) for p in paths}
    if len(fmts) > 1:
        raise BacktestInputError(f"price files mix formats {sorted(fmts)}; pass --price-format and one kind of file")
    kind = fmts.pop()
    if kind not in PRICE_FORMATS:
        raise BacktestInputError(f"unknown price format {kind!r} (one of {', '.join(PRICE_FORMATS)})")

    published: dict[pd.Timestamp, pd.DataFrame] = {}
    try:
        if kind == "aemo":
            frames = [aemo_file_price_frame(list(paths), retail, region)]
        elif kind == "normalized":
            frames = [read_normalized_csv(p) for p in paths]
        elif kind == "amber":
            parse = _provider_parser(kind, ("read_amber_file", "parse_amber_file"))
            frames = [parse(p) for p in paths]
        else:
            parse = _provider_parser(kind, ("read_octopus_file", "parse_octopus_file"))
            if len(export_paths) > 1:
                raise BacktestInputError("Octopus export rates: give one export file")
            frames = [parse(p, export_paths[0]) if export_paths else parse(p) for p in paths]
    except PriceFileError as exc:
        raise BacktestInputError(str(exc)) from None
    except BacktestInputError:
        raise
    except ValueError as exc:  # pandera / provider errors name the problem; add which files
        raise BacktestInputError(f"{', '.join(p.name for p in paths)}: {exc}") from None
    realised = []
    for f in frames:
        fc = f["is_forecast"].astype(bool) if "is_forecast" in f else pd.Series(False, index=f.index)
        if fc.any():
            known = f.index[~fc.to_numpy()]
            issued = known[-1] if len(known) else f.index[fc.to_numpy()][0]
            published[issued] = f.loc[fc.to_numpy(), ["import_price", "export_price"]]
        realised.append(f.loc[~fc.to_numpy()])
    frame = pd.concat(realised) if realised else frames[0].iloc[:0]
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    if frame.empty:
        raise BacktestInputError(f"{paths[0].name}: no realised (non-forecast) prices")
    if "rrp" not in frame:
        frame["rrp"] = np.nan
    med = float(np.nanmedian(np.abs(frame["import_price"].to_numpy())))
    if med > 2.0:
        raise BacktestInputError(
            f"{paths[0].name}: median import price {med:.2f}/kWh: are these c/kWh or $/MWh? expected $/kWh"
        )
    out = frame[["import_price", "export_price", "rrp"]].copy()
    out.attrs.update(format=kind, published=published,
                     source=", ".join(p.name for p in paths[:3]) + (" ..." if len(paths) > 3 else ""))
    return out


def to_five_minute_grid(frame: pd.DataFrame, source: str, max_gap: pd.Timedelta) -> tuple[pd.DataFrame, int]:
    """Check a series' timestamps and bring it to the 5-minute grid; returns (frame, intervals filled)."""
    idx = frame.index
    if not isinstance(idx, pd.DatetimeIndex) or idx.tz is None:
        raise BacktestInputError(f"{source}: timestamps must be timezone-aware interval starts")
    if len(idx) < 2:
        raise BacktestInputError(f"{source}: fewer than two intervals")
    off = idx[(idx - idx.floor("5min")) != pd.Timedelta(0)]
    if len(off):
        raise BacktestInputError(
            f"{source}: {len(off)} timestamps are not on the 5-minute grid (first {off[0].isoformat()}); "
            "expected interval starts at :00, :05, ..."
        )
    steps = idx.to_series().diff().dropna()
    native = steps.mode().iloc[0]
    full = pd.date_range(idx[0], idx[-1] + native - STEP, freq=STEP, tz="UTC")
    have = frame.reindex(idx.union(full)).sort_index()
    # A 30-min price covers its six 5-min slots: fill forward within each native interval.
    hold = int(native / STEP) - 1
    held = have.ffill(limit=hold) if hold > 0 else have
    missing = held.iloc[:, 0].isna()
    filled = 0
    if missing.any():
        runs = (missing != missing.shift()).cumsum()[missing]
        longest = runs.value_counts().max()
        if longest * STEP > max_gap:
            first = held.index[missing][0]
            raise BacktestInputError(
                f"{source}: gap of {longest * STEP} starting {first.isoformat()} "
                f"({int(missing.sum())} missing 5-minute intervals in all; gaps up to {max_gap} are filled)"
            )
        filled = int(missing.sum())
        held = held.ffill()
    return held.loc[full], filled


def read_power_csv(path: str | Path, column: str, import_limit_kw: float) -> pd.Series:
    """A load or solar CSV (``interval_start`` with offset, ``<column>`` in kW) as a series of mean kW."""
    p = Path(path)
    if not p.exists():
        raise BacktestInputError(f"{column} file not found: {p}")
    df = pd.read_csv(p)
    if "interval_start" not in df.columns:
        raise BacktestInputError(f"{p.name}: missing column interval_start")
    if column not in df.columns:
        other = [c for c in df.columns if c != "interval_start"]
        hint = ""
        if any(c.endswith(("_w", "_kwh", "_wh")) or c in ("kwh", "w", "watts") for c in other):
            hint = f" (found {other}: convert to mean power in kW per interval)"
        raise BacktestInputError(f"{p.name}: missing column {column}{hint}")
    ts = pd.to_datetime(df["interval_start"], format="ISO8601")
    if getattr(ts.dt, "tz", None) is None:
        raise BacktestInputError(f"{p.name}: interval_start must carry a UTC offset (e.g. 2024-01-01T00:00:00Z)")
    s = pd.Series(pd.to_numeric(df[column], errors="coerce").to_numpy(), index=pd.DatetimeIndex(ts).tz_convert("UTC"))
    if s.isna().any():
        raise BacktestInputError(f"{p.name}: {int(s.isna().sum())} non-numeric {column} values")
    if s.index.duplicated().any():
        raise BacktestInputError(f"{p.name}: {int(s.index.duplicated().sum())} duplicated interval_start values")
    check_power_units(s.to_numpy(), f"{p.name} {column}", import_limit_kw)
    return s.sort_index()


def check_power_units(values: np.ndarray, source: str, import_limit_kw: float) -> None:
    """Reject watts passed as kW and negative powers: both silently wreck a backtest."""
    if len(values) == 0:
        return
    if float(np.min(values)) < -1e-3:
        raise BacktestInputError(f"{source}: negative values (min {np.min(values):.3f}); expected kW >= 0")
    limit = max(50.0, 4 * import_limit_kw)
    p99 = float(np.percentile(values, 99))
    if p99 > limit:
        raise BacktestInputError(
            f"{source}: values up to {p99:.0f} (99th percentile) exceed {limit:.0f} kW: are these W? expected kW"
        )


@dataclass
class SiteSeriesSources:
    """Where load and solar come from: explicit CSVs, else the site's profile (scaled as configured)."""

    load_file: str | None = None
    solar_file: str | None = None
    solar_scale: float = 1.0


def build_backtest_data(site: SiteConfig, prices: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp | None,
                        sources: SiteSeriesSources | None = None, max_gap: pd.Timedelta = MAX_GAP,
                        price_source: str = "prices", history: pd.Timedelta = HISTORY) -> BacktestData:
    """Align prices, load and solar on the 5-minute grid over ``[start, end)`` plus ``history`` before it (as far
    as the data reaches) and look-ahead."""
    sources = sources or SiteSeriesSources()
    published = dict(prices.attrs.get("published") or {})
    grid, filled = to_five_minute_grid(prices[["import_price", "export_price", "rrp"]], price_source, max_gap)
    first, last = grid.index[0], grid.index[-1] + STEP
    start = utc_time(start, "--start") if start is not None else first
    end = utc_time(end, "--end") if end is not None else last
    for name, t in (("start", start), ("end", end)):
        if t != t.floor("5min"):
            raise BacktestInputError(f"--{name} {t.isoformat()} is not on the 5-minute grid")
    if end <= start:
        raise BacktestInputError(f"--end {end.isoformat()} is not after --start {start.isoformat()}")
    if start < first or end > last:
        raise BacktestInputError(
            f"window {start.isoformat()} .. {end.isoformat()} is outside the price data ({price_source}: "
            f"{first.isoformat()} .. {last.isoformat()})"
        )
    a, b = max(first, start - history), min(last, end + LOOKAHEAD)
    index = pd.date_range(a, b - STEP, freq=STEP, tz="UTC")
    load = site_power_series(site, index, "load_kw", sources.load_file, 1.0)
    solar = site_power_series(site, index, "solar_kw", sources.solar_file, sources.solar_scale)
    # Explicit files may not cover the history/look-ahead margins: keep only the part every series covers.
    ok = ~(np.isnan(load) | np.isnan(solar))
    inside = (index >= start) & (index < end)
    if not ok[inside].all():
        bad = index[inside & ~ok][0]
        which = "load" if np.isnan(load[index.get_loc(bad)]) else "solar"
        raise BacktestInputError(f"{which} series does not cover the window (first missing interval {bad.isoformat()})")
    lo = int(np.argmax(inside))
    while lo > 0 and ok[lo - 1]:
        lo -= 1
    hi = int(len(index) - np.argmax(inside[::-1]))
    while hi < len(index) and ok[hi]:
        hi += 1
    index, load, solar = index[lo:hi], load[lo:hi], solar[lo:hi]
    g = grid.loc[index]
    data = BacktestData(
        index=index, import_price=g["import_price"].to_numpy(), export_price=g["export_price"].to_numpy(),
        load_kw=load, solar_kw=solar, i0=int(index.get_indexer([start])[0]), i1=int(index.get_indexer([end - STEP])[0]) + 1,
        rrp=g["rrp"].to_numpy(dtype=float), timezone=site.timezone,
        published={t: f for t, f in published.items() if index[0] <= t <= index[-1]},
    )
    if filled:
        data.notes.append(f"{price_source}: {filled} missing 5-minute price intervals forward-filled")
    return data


def utc_time(t: pd.Timestamp | str, name: str) -> pd.Timestamp:
    """A window bound: ISO 8601 with an offset (a naive time is ambiguous across NEM/local/UTC)."""
    try:
        ts = pd.Timestamp(t)
    except ValueError:
        raise BacktestInputError(f"{name} {t!r} is not an ISO 8601 time") from None
    if ts.tzinfo is None:
        raise BacktestInputError(f"{name} {t} must carry a UTC offset (e.g. 2024-01-09T14:00:00Z)")
    return ts.tz_convert("UTC")


def site_power_series(site: SiteConfig, index: pd.DatetimeIndex, column: str, file: str | None, scale: float) -> np.ndarray:
    """One power series on ``index`` (NaN where an explicit file does not reach)."""
    if file:
        s = read_power_csv(file, column, site.limits.import_kw)
        grid, _ = to_five_minute_grid(s.to_frame(column), f"{Path(file).name}", pd.Timedelta(minutes=30))
        values = grid[column].reindex(index).to_numpy(dtype=float)
        return values * scale
    base = Path(site.base_dir) if site.base_dir else None
    prof_path = resolve_data_path(site.load.profile, base)
    profile = read_profile(prof_path)
    if column not in profile.columns:
        if column == "solar_kw":  # a load-only profile and no solar file: the site has no PV data
            return np.zeros(len(index))
        raise BacktestInputError(f"profile {prof_path.name}: no {column} column and no --load file")
    values = map_profile(profile, index, site.timezone, column)
    check_power_units(values, f"profile {prof_path.name} {column}", site.limits.import_kw)
    if column == "load_kw" and site.load.annual_kwh:
        # Scale the profile's year to the site's annual consumption.
        year = profile["load_kw"].to_numpy(dtype=float).sum() * profile.attrs.get("step_minutes", 30) / 60
        values = values * (site.load.annual_kwh / year)
    return values * scale


def persistence_source(i: np.ndarray, known: int, n: int) -> np.ndarray:
    """For target slots ``i`` at decision slot ``known``: the latest same-time-of-day slot not after ``known``.

    Used by forecasts and by padding beyond the data end; a slot before the data start falls back to ``known``.
    """
    ahead = np.maximum(i - known, 0)
    days = -(-ahead // STEPS_PER_DAY)
    src = i - days * STEPS_PER_DAY
    src = np.where(src < 0, known, src)
    return np.minimum(src, n - 1)
