"""Historical price files: AEMO "price and demand" CSVs and the normalised CSV format.

Used by the ``replay`` provider (the demo) and by backtests. AEMO ``SETTLEMENTDATE`` is NEM time (UTC+10,
no DST) and stamps the interval END; RRP is $/MWh ex-GST. Both are converted here, once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..config import RetailMapping
from ..schemas import finalize_price_frame

NEM_TZ_OFFSET = pd.Timedelta(hours=10)


class PriceFileError(ValueError):
    """A price file that cannot be read; the message names the file and the problem."""


def nem_time_to_utc_start(settlement: pd.Series, interval_minutes: int = 5) -> pd.DatetimeIndex:
    """NEM wall-clock interval END (UTC+10 fixed) -> UTC interval START."""
    ends = pd.to_datetime(settlement, format="mixed")
    if getattr(ends.dt, "tz", None) is not None:
        raise PriceFileError("AEMO SETTLEMENTDATE must be naive NEM time (UTC+10); got a timezone-aware value")
    starts = ends - NEM_TZ_OFFSET - pd.Timedelta(minutes=interval_minutes)
    return pd.DatetimeIndex(starts).tz_localize("UTC")


def read_aemo_price_and_demand(paths: str | Path | list[str | Path], region: str | None = None) -> pd.DataFrame:
    """Read one or more AEMO PRICE_AND_DEMAND CSVs into a frame of ``rrp`` ($/MWh) by UTC interval start."""
    files = [Path(p) for p in (paths if isinstance(paths, list) else [paths])]
    frames = []
    for f in files:
        if not f.exists():
            raise PriceFileError(f"AEMO price file not found: {f}")
        df = pd.read_csv(f)
        missing = {"REGION", "SETTLEMENTDATE", "RRP"} - set(df.columns)
        if missing:
            raise PriceFileError(f"{f.name}: not an AEMO price-and-demand CSV (missing columns {sorted(missing)})")
        if region is not None:
            df = df[df["REGION"] == region]
            if df.empty:
                raise PriceFileError(f"{f.name}: no rows for region {region}")
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    if df["REGION"].nunique() > 1:
        raise PriceFileError(f"several regions in AEMO files ({sorted(df.REGION.unique())}); pass region=")
    # AEMO moved to 5-minute settlement in Oct 2021; older files are 30-minute.
    ends = pd.to_datetime(df["SETTLEMENTDATE"], format="mixed")
    step = ends.sort_values().diff().dropna().mode()
    interval = int(step.iloc[0].total_seconds() // 60) if len(step) else 5
    idx = nem_time_to_utc_start(df["SETTLEMENTDATE"], interval)
    out = pd.DataFrame({"rrp": pd.to_numeric(df["RRP"], errors="coerce").to_numpy()}, index=idx)
    out.index.name = "interval_start"
    if out["rrp"].isna().any():
        raise PriceFileError(f"{int(out.rrp.isna().sum())} non-numeric RRP values in AEMO file(s)")
    out = out[~out.index.duplicated(keep="last")].sort_index()
    if interval != 5:  # expand each 30-min price over its six 5-min slots, the last period included
        grid = pd.date_range(out.index[0], out.index[-1] + pd.Timedelta(minutes=interval - 5), freq="5min",
                             name="interval_start")
        out = out.reindex(grid).ffill()
    out.attrs["region"] = str(df["REGION"].iloc[0])
    return out


def retail_prices(rrp_per_mwh: pd.Series | np.ndarray, retail: RetailMapping) -> tuple[np.ndarray, np.ndarray]:
    """Wholesale RRP ($/MWh ex-GST) -> (import, export) in $/kWh as the owner sees them."""
    wholesale = np.asarray(rrp_per_mwh, dtype=float) / 1000.0
    imp = (wholesale + retail.network_adder_per_kwh) * (1.0 + retail.gst)
    if retail.import_floor_per_kwh is not None:
        imp = np.maximum(imp, retail.import_floor_per_kwh)
    exp = wholesale * retail.export_factor - retail.export_fee_per_kwh
    return imp, exp


def aemo_file_price_frame(paths, retail: RetailMapping, region: str | None = None,
                          source: str = "aemo_file") -> pd.DataFrame:
    """AEMO CSV(s) -> validated price frame with the retail mapping applied (``rrp`` kept as published)."""
    raw = read_aemo_price_and_demand(paths, region)
    imp, exp = retail_prices(raw["rrp"], retail)
    df = pd.DataFrame({"import_price": imp, "export_price": exp, "rrp": raw["rrp"].to_numpy()}, index=raw.index)
    return finalize_price_frame(df, source=source, fetched_at=pd.Timestamp("1970-01-01", tz="UTC"))


def read_normalized_csv(path: str | Path, source: str = "normalized") -> pd.DataFrame:
    """The normalised CSV: ``interval_start`` (ISO 8601 with offset), ``import_price``, ``export_price``
    ($/kWh) and optional ``spike_status`` / ``is_forecast``."""
    f = Path(path)
    if not f.exists():
        raise PriceFileError(f"price file not found: {f}")
    df = pd.read_csv(f)
    missing = {"interval_start", "import_price", "export_price"} - set(df.columns)
    if missing:
        raise PriceFileError(f"{f.name}: normalised CSV is missing columns {sorted(missing)}")
    ts = pd.to_datetime(df.pop("interval_start"), utc=False, format="ISO8601")
    if getattr(ts.dt, "tz", None) is None:
        raise PriceFileError(f"{f.name}: interval_start must carry a UTC offset (e.g. 2024-01-01T00:00:00Z)")
    df.index = pd.DatetimeIndex(ts).tz_convert("UTC")
    df.index.name = "interval_start"
    if df.index.duplicated().any():
        raise PriceFileError(f"{f.name}: {int(df.index.duplicated().sum())} duplicated interval_start values")
    if df[["import_price", "export_price"]].abs().max().max() > 25:
        raise PriceFileError(f"{f.name}: prices above 25/kWh: are these $/MWh or c/kWh? expected $/kWh")
    return finalize_price_frame(df.sort_index(), source=source, fetched_at=pd.Timestamp("1970-01-01", tz="UTC"))
