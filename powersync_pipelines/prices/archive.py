"""Provider price forecasts archived as published: (issue time, target interval, value, source).

Why: the ``prices`` table keeps one row per interval, so each fetch overwrites the forecast an interval had
before; what a provider said *then* is lost, and a backtest of ``--forecast provider|blended`` on a site's
own history is impossible. Every fetched frame (``fallback.fetch_with_fallback``) is archived here: AEMO
P5MIN and predispatch runs, Amber ``advancedPrice`` forecasts, Octopus day-ahead prices, any provider whose
frame holds intervals that had not started when it was fetched. The issue time is the frame's
``fetched_at`` (when the site saw the publication). Idempotent: re-archiving the same issue changes nothing.

:func:`published_frames` reads an archive back in the shape the backtest's ``BacktestData.published`` holds
(issue time -> frame of ``import_price``/``export_price`` by interval start).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..storage import HistoryStore

ARCHIVE_TABLE = "price_forecast_archive"
KEYS = ["site_id", "source", "issued_at", "interval_start"]
EPOCH = pd.Timestamp("1970-01-02", tz="UTC")  # saved files carry fetched_at 1970-01-01: no issue time known


COLUMNS = ["site_id", "source", "issued_at", "interval_start", "lead_minutes", "import_price", "export_price",
           "rrp", "price_low", "price_high", "stage"]
_FIVE_MIN_NS = 300 * 10**9


def _utc_ns(values: pd.Series | pd.Index) -> np.ndarray:
    """Nanoseconds since the epoch (UTC) of a datetime column or index, without a pandas round trip when it is
    already ``datetime64[ns, UTC]`` (every fetched frame): this runs once per site per planning cycle."""
    if isinstance(values.dtype, pd.DatetimeTZDtype) and values.dtype.unit == "ns":
        return np.asarray(values.tz_convert("UTC") if isinstance(values, pd.Index) else values.dt.tz_convert("UTC"),
                          dtype="datetime64[ns]").view("i8")
    return np.asarray(pd.DatetimeIndex(pd.to_datetime(values, utc=True)).as_unit("ns").tz_localize(None),
                      dtype="datetime64[ns]").view("i8")


def _floats(frame: pd.DataFrame, col: str, keep: np.ndarray) -> np.ndarray:
    return frame[col].to_numpy(float)[keep] if col in frame else np.full(int(keep.sum()), np.nan)


def published_rows(site_id: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The archive rows of one fetched frame: every interval marked ``is_forecast`` or starting at or after
    the fetch; none when the frame has no real fetch time (saved files)."""
    if frame is None or frame.empty or "fetched_at" not in frame:
        return pd.DataFrame(columns=COLUMNS)
    issued = _utc_ns(frame["fetched_at"])
    start = _utc_ns(pd.DatetimeIndex(frame.index))
    future = start >= issued - issued % _FIVE_MIN_NS  # at or after the fetch's 5-minute interval
    marked = (frame["is_forecast"].astype("boolean").fillna(False).to_numpy(bool) if "is_forecast" in frame
              else np.zeros(len(frame), dtype=bool))
    keep = (marked | future) & (issued > EPOCH.value)
    n = int(keep.sum())
    if not n:
        return pd.DataFrame(columns=COLUMNS)
    return pd.DataFrame({
        "site_id": np.full(n, site_id, dtype=object),
        "source": frame["source"].astype(str).to_numpy()[keep] if "source" in frame else np.full(n, "unknown",
                                                                                                 dtype=object),
        "issued_at": pd.DatetimeIndex(issued[keep].view("datetime64[ns]")).tz_localize("UTC"),
        "interval_start": pd.DatetimeIndex(start[keep].view("datetime64[ns]")).tz_localize("UTC"),
        "lead_minutes": np.rint((start[keep] - issued[keep]) / 60e9).astype(int),
        "import_price": frame["import_price"].to_numpy(float)[keep],
        "export_price": frame["export_price"].to_numpy(float)[keep],
        "rrp": _floats(frame, "rrp", keep),
        "price_low": _floats(frame, "price_low", keep),
        "price_high": _floats(frame, "price_high", keep),
        "stage": frame["provenance"].astype(str).to_numpy()[keep] if "provenance" in frame else None,
    }, columns=COLUMNS)


def archive_published(store: HistoryStore, site_id: str, frame: pd.DataFrame) -> int:
    """Archive a fetched frame's forecast intervals (see :func:`published_rows`); the number of rows."""
    rows = published_rows(site_id, frame)
    if rows.empty:
        return 0
    return store.upsert(ARCHIVE_TABLE, rows, KEYS)


def read_archive(store: HistoryStore, site_id: str, start: pd.Timestamp | None = None,
                 end: pd.Timestamp | None = None, source: str | None = None) -> pd.DataFrame:
    """Archived rows of a site issued in ``[start, end)`` (and of one source), by issue time and interval."""
    sql = f"SELECT * FROM {ARCHIVE_TABLE} WHERE site_id = ?"
    params: list = [site_id]
    for cond, value in (("issued_at >= ?", start), ("issued_at < ?", end), ("source = ?", source)):
        if value is not None:
            sql += f" AND {cond}"
            params.append(pd.Timestamp(value).to_pydatetime() if cond.startswith("issued") else value)
    df = store.query(sql + " ORDER BY issued_at, interval_start", params)
    for col in ("issued_at", "interval_start"):
        df[col] = pd.to_datetime(df[col], utc=True)
    return df


def published_frames(archive: pd.DataFrame) -> dict[pd.Timestamp, pd.DataFrame]:
    """Issue time -> ``import_price``/``export_price`` by interval start (the backtest's ``published`` shape)."""
    out = {}
    for issued, g in archive.groupby("issued_at", sort=True):
        f = g.set_index("interval_start")[["import_price", "export_price"]].sort_index()
        out[pd.Timestamp(issued)] = f[~f.index.duplicated(keep="last")]
    return out
