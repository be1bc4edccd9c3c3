"""pandera schemas shared by every stage: the normalised price frame and the plan (schedule) frame.

Index everywhere: interval start, timezone-aware UTC. Prices in $/kWh (or £/kWh), GST/VAT inclusive,
export positive when the owner is paid. Powers in kW with named directions, SOC as a fraction 0-1.
"""

from __future__ import annotations

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
    return PriceFrame.validate(out, lazy=True)
