"""Historical price files: AEMO "price and demand" CSVs and the normalised CSV format.

Used by the ``replay`` provider (the demo) and by backtests. AEMO ``SETTLEMENTDATE`` is NEM time (UTC+10,
no DST) and stamps the interval END; RRP is $/MWh ex-GST. Both are converted here, once.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import RetailMapping
from ..schemas import FrameSchemaError, finalize_price_frame
from .quality import check_complete_text, clean_intervals, price_frame, shown

NEM_TZ_OFFSET = pd.Timedelta(hours=10)
AEMO_TIME = "%Y/%m/%d %H:%M:%S"  # as AEMO publishes SETTLEMENTDATE
ISO_TIME = "%Y-%m-%d %H:%M:%S"
_OFFSET_LABEL = r"(?:Z|[+-]\d{2}:?\d{2})$"


class PriceFileError(ValueError):
    """A price file that cannot be read; the message names the file and the problem."""


def _settlement_ends(values: pd.Series, name: str) -> pd.Series:
    """AEMO's naive NEM-time SETTLEMENTDATE strings -> naive datetimes; anything else names its row.

    An offset label (``+10:00``) is refused rather than trusted: AEMO never writes one, and a file that has
    one was rewritten by someone whose clock convention is unknown (one public scraper labels NEM time +11:00).
    """
    text = values.astype(str).str.strip().str.strip('"')
    labelled = text.str.contains(_OFFSET_LABEL, regex=True)
    if labelled.any():
        n = int(np.flatnonzero(labelled.to_numpy())[0])
        raise PriceFileError(f"{name}: SETTLEMENTDATE must be AEMO's naive NEM time (YYYY/MM/DD HH:MM:SS); "
                             f"data row {n + 1} has {text.iloc[n]!r}")
    ends = pd.to_datetime(text, format=AEMO_TIME, errors="coerce")
    if ends.isna().any():  # the same wall clock written ISO-style (a re-saved file) is still unambiguous
        ends = ends.fillna(pd.to_datetime(text, format=ISO_TIME, errors="coerce"))
    if ends.isna().any():
        n = int(np.flatnonzero(ends.isna().to_numpy())[0])
        raise PriceFileError(f"{name}: data row {n + 1} has SETTLEMENTDATE {text.iloc[n]!r}; expected "
                             "YYYY/MM/DD HH:MM:SS (a date without its time would shift the interval)")
    return ends


def read_aemo_price_and_demand(paths: str | Path | list[str | Path], region: str | None = None) -> pd.DataFrame:
    """Read one or more AEMO PRICE_AND_DEMAND CSVs into a frame of ``rrp`` ($/MWh) by UTC interval start."""
    files = [Path(p) for p in (paths if isinstance(paths, list) else [paths])]
    frames, all_ends = [], []
    for f in files:
        if not f.exists():
            raise PriceFileError(f"AEMO price file not found: {f}")
        try:
            text = f.read_text()
            check_complete_text(text, f.name, "aemo")
            df = pd.read_csv(io.StringIO(text), dtype=str, skipinitialspace=True)
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise PriceFileError(f"{f.name}: not a readable CSV ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
        missing = {"REGION", "SETTLEMENTDATE", "RRP"} - set(df.columns)
        if missing:
            raise PriceFileError(f"{f.name}: not an AEMO price-and-demand CSV (missing columns {sorted(missing)})")
        short = df[df.columns[-1]].isna() & df[df.columns[-1]].notna().any()
        if short.any():
            n = int(np.flatnonzero(short.to_numpy())[0])
            raise PriceFileError(f"{f.name}: data row {n + 1} has fewer fields than the header (cut off or edited?)")
        df["REGION"] = df["REGION"].str.strip()
        if region is not None:
            df = df[df["REGION"] == region]
        if df.empty:
            raise PriceFileError(f"{f.name}: no rows" + (f" for region {region}" if region else ""))
        ends = _settlement_ends(df["SETTLEMENTDATE"], f.name)
        rrp = pd.to_numeric(df["RRP"], errors="coerce")
        if rrp.isna().any():
            n = int(np.flatnonzero(rrp.isna().to_numpy())[0])
            raise PriceFileError(f"{f.name}: data row {df.index[n] + 1} has RRP {shown(df['RRP'].iloc[n])}, not a number "
                                 f"({int(rrp.isna().sum())} such row(s); a cut-off file?)")
        frames.append(df.assign(RRP=rrp))
        all_ends.append(ends)
    df = pd.concat(frames, ignore_index=True)
    ends = pd.concat(all_ends, ignore_index=True)
    if df["REGION"].nunique() > 1:
        raise PriceFileError(f"several regions in AEMO files ({sorted(df.REGION.unique())}); pass region=")
    # AEMO moved to 5-minute settlement in Oct 2021; older files are 30-minute.
    step = ends.drop_duplicates().sort_values().diff().dropna().mode()
    interval = int(step.iloc[0].total_seconds() // 60) if len(step) else 5
    if interval not in (5, 30):
        raise PriceFileError(f"AEMO file(s) have {interval}-minute intervals; expected 5 or 30")
    idx = pd.DatetimeIndex(ends - NEM_TZ_OFFSET - pd.Timedelta(minutes=interval)).tz_localize("UTC")
    out = pd.DataFrame({"rrp": df["RRP"].to_numpy(dtype=float)}, index=idx)
    out.index.name = "interval_start"
    out = clean_intervals(out, "aemo", ("rrp",))
    if interval != 5:  # each 30-min price holds for its own six 5-min slots; a missing period stays missing
        reps = interval // 5
        offsets = np.tile(np.arange(reps) * pd.Timedelta(minutes=5).value, len(out))
        grid = pd.DatetimeIndex(np.repeat(out.index.asi8, reps) + offsets, tz="UTC", name="interval_start")
        out = pd.DataFrame({"rrp": np.repeat(out["rrp"].to_numpy(), reps)}, index=grid)
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
    return price_frame(df, "aemo", source, pd.Timestamp("1970-01-01", tz="UTC"))


def read_normalized_csv(path: str | Path, source: str = "normalized") -> pd.DataFrame:
    """The normalised CSV: ``interval_start`` (ISO 8601 with offset), ``import_price``, ``export_price``
    ($/kWh) and optional ``spike_status`` / ``is_forecast``."""
    f = Path(path)
    if not f.exists():
        raise PriceFileError(f"price file not found: {f}")
    try:
        text = f.read_text()
        check_complete_text(text, f.name, "normalized")
        df = pd.read_csv(io.StringIO(text))
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise PriceFileError(f"{f.name}: not a readable CSV ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    missing = {"interval_start", "import_price", "export_price"} - set(df.columns)
    if missing:
        raise PriceFileError(f"{f.name}: normalised CSV is missing columns {sorted(missing)}")
    text = df.pop("interval_start").astype(str).str.strip()
    naive = ~text.str.contains(_OFFSET_LABEL, regex=True)
    if naive.any():
        n = int(np.flatnonzero(naive.to_numpy())[0])
        raise PriceFileError(f"{f.name}: interval_start must carry a UTC offset (e.g. 2024-01-01T00:00:00Z); "
                             f"data row {n + 1} has {text.iloc[n]!r}")
    ts = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    if ts.isna().any():
        n = int(np.flatnonzero(ts.isna().to_numpy())[0])
        raise PriceFileError(f"{f.name}: data row {n + 1} has interval_start {text.iloc[n]!r}, not an ISO 8601 time")
    df.index = pd.DatetimeIndex(ts, name="interval_start")
    for col in ("import_price", "export_price"):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    df = clean_intervals(df, "normalized", where=f"{f.name}: ")
    if df[["import_price", "export_price"]].abs().max().max() > 25:
        raise PriceFileError(f"{f.name}: prices above 25/kWh: are these $/MWh or c/kWh? expected $/kWh")
    try:
        return finalize_price_frame(df, source=source, fetched_at=pd.Timestamp("1970-01-01", tz="UTC"))
    except FrameSchemaError as exc:
        raise PriceFileError(f"{f.name}: {exc}") from None
