"""pandera schemas shared by every stage: the normalised price frame and the plan (schedule) frame.

Index everywhere: interval start, timezone-aware UTC. Prices in $/kWh (or £/kWh), GST/VAT inclusive,
export positive when the owner is paid. Powers in kW with named directions, SOC as a fraction 0-1.
"""

from __future__ import annotations

import re

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Index, Series

SPIKE_STATUSES = ("none", "potential", "spike")
ACTIONS = ("CHARGE", "EXPORT", "IDLE", "SELF_CONSUMPTION")
PRICE_COLUMNS = ["import_price", "export_price", "spike_status", "is_forecast", "price_low", "price_high", "source", "fetched_at"]
# A sanity band wide enough for the NEM market price cap ($20/kWh inc GST ~ 22) and floor, but narrow
# enough to catch $/MWh values passed as $/kWh (a 50 $/MWh price read as 50 $/kWh fails).
PRICE_MIN, PRICE_MAX = -2.0, 25.0


class PriceFrame(pa.DataFrameModel):
    """The one normalised price frame every provider produces."""

    interval_start: Index[pd.DatetimeTZDtype] = pa.Field(
        dtype_kwargs={"unit": "ns", "tz": "UTC"}, unique=True, check_name=True
    )
    import_price: Series[float] = pa.Field(ge=PRICE_MIN, le=PRICE_MAX, nullable=False)
    export_price: Series[float] = pa.Field(ge=PRICE_MIN, le=PRICE_MAX, nullable=False)
    spike_status: Series[str] = pa.Field(isin=list(SPIKE_STATUSES))
    is_forecast: Series[bool]
    price_low: Series[float] = pa.Field(nullable=True)
    price_high: Series[float] = pa.Field(nullable=True)
    source: Series[str]
    fetched_at: Series[pd.DatetimeTZDtype] = pa.Field(dtype_kwargs={"unit": "ns", "tz": "UTC"})

    class Config:
        strict = False  # providers may carry extra columns (e.g. AEMO ``rrp`` in $/MWh as published)
        coerce = True
        name = "PriceFrame"

    @pa.dataframe_check
    def sorted_index(cls, df: pd.DataFrame) -> bool:
        return bool(df.index.is_monotonic_increasing)


class ScheduleFrame(pa.DataFrameModel):
    """A battery plan on the 5-minute grid (the optimizer's output, as stored and shown)."""

    interval_start: Index[pd.DatetimeTZDtype] = pa.Field(
        dtype_kwargs={"unit": "ns", "tz": "UTC"}, unique=True, check_name=True
    )
    action: Series[str] = pa.Field(isin=list(ACTIONS))
    grid_import_kw: Series[float] = pa.Field(ge=-1e-6)
    grid_export_kw: Series[float] = pa.Field(ge=-1e-6)
    battery_charge_kw: Series[float] = pa.Field(ge=-1e-6)
    battery_discharge_kw: Series[float] = pa.Field(ge=-1e-6)
    soc: Series[float] = pa.Field(ge=-1e-6, le=1 + 1e-6)
    import_price: Series[float]
    export_price: Series[float]

    class Config:
        strict = False
        coerce = True
        name = "ScheduleFrame"


class FrameSchemaError(ValueError):
    """A frame that fails its pandera schema, summarised in one line (column, rows, what was expected).

    pandera's own ``SchemaErrors`` text is a multi-line JSON report; the person reading a failed run or a CLI
    error needs the first bad column and row, and a count.
    """

    def __init__(self, what: str, summary: str, columns: tuple[str, ...] = ()) -> None:
        self.columns = columns
        super().__init__(f"{what}: {summary}")


_CHECK_WORDS = (
    (re.compile(r"^not_nullable$"), lambda m: "a value, not null/NaN"),
    (re.compile(r"^greater_than_or_equal_to\((.*)\)$"), lambda m: f">= {m.group(1)}"),
    (re.compile(r"^less_than_or_equal_to\((.*)\)$"), lambda m: f"<= {m.group(1)}"),
    (re.compile(r"^greater_than\((.*)\)$"), lambda m: f"> {m.group(1)}"),
    (re.compile(r"^less_than\((.*)\)$"), lambda m: f"< {m.group(1)}"),
    (re.compile(r"^isin\((.*)\)$"), lambda m: f"one of {m.group(1)}"),
    (re.compile(r"^(?:coerce_)?dtype\('?([^')]*)'?\)$"), lambda m: f"type {m.group(1)}"),
    (re.compile(r"^field_uniqueness$|^unique$"), lambda m: "unique values"),
)


def _expected(check: str) -> str:
    for pattern, word in _CHECK_WORDS:
        m = pattern.match(check)
        if m:
            return word(m)
    return check


def summarize_schema_errors(exc: pa.errors.SchemaErrors, limit: int = 3) -> tuple[str, tuple[str, ...]]:
    """One line from a lazy pandera failure: per (column, check) the row count, the first row and its value."""
    fc = exc.failure_cases.copy()
    fc["column"] = fc["column"].fillna(fc["schema_context"]).astype(str)
    fc["check"] = fc["check"].astype(str)
    parts: list[str] = []
    seen: set[tuple[str, str]] = set()
    for _, row in fc.iterrows():
        key = (row["column"], _expected(row["check"]))
        if key in seen:
            continue
        seen.add(key)
        same = fc[(fc["column"] == row["column"]) & (fc["check"] == row["check"])]
        where = same["index"].dropna()
        first = where.iloc[0] if len(where) else None
        at = f", first at {first.isoformat() if isinstance(first, pd.Timestamp) else first}" if first is not None else ""
        value = row["failure_case"]
        shown = not (isinstance(value, str) and value.startswith(("TypeError", "ValueError"))) and row["check"] != "not_nullable"
        got = f", got {value!r}" if shown else ""
        parts.append(f"{row['column']}: {len(same)} row(s) where {key[1]} was expected{at}{got}")
    more = f"; {len(parts) - limit} more problem(s)" if len(parts) > limit else ""
    columns = tuple(dict.fromkeys(c for c, _ in seen))
    return "; ".join(parts[:limit]) + more, columns


def empty_price_frame() -> pd.DataFrame:
    idx = pd.DatetimeIndex([], tz="UTC", name="interval_start")
    return pd.DataFrame({c: pd.Series(dtype="float64") for c in PRICE_COLUMNS}, index=idx)


def finalize_price_frame(df: pd.DataFrame, source: str, fetched_at: pd.Timestamp | None = None) -> pd.DataFrame:
    """Fill optional columns with their defaults, order columns, validate. Providers call this last."""
    out = df.copy()
    out.index = pd.DatetimeIndex(out.index).tz_convert("UTC") if out.index.tz is not None else out.index
    out.index.name = "interval_start"
    if "spike_status" not in out:
        out["spike_status"] = "none"
    if "is_forecast" not in out:
        out["is_forecast"] = False
    for c in ("price_low", "price_high"):
        if c not in out:
            out[c] = float("nan")
    if "source" not in out:
        out["source"] = source
    if "fetched_at" not in out:
        out["fetched_at"] = fetched_at if fetched_at is not None else pd.Timestamp.now(tz="UTC")
    out["fetched_at"] = pd.to_datetime(out["fetched_at"], utc=True).astype("datetime64[ns, UTC]")
    out.index = out.index.astype("datetime64[ns, UTC]")
    extra = [c for c in out.columns if c not in PRICE_COLUMNS]
    out = out[PRICE_COLUMNS + extra].sort_index()
    try:
        return PriceFrame.validate(out, lazy=True)
    except pa.errors.SchemaErrors as exc:
        summary, columns = summarize_schema_errors(exc)
        raise FrameSchemaError(f"price frame from {source}", summary, columns) from None
