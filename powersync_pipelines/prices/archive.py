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


def published_rows(site_id: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The archive rows of one fetched frame: every interval marked ``is_forecast`` or starting at or after
    the fetch; none when the frame has no real fetch time (saved files)."""
    cols = ["site_id", "source", "issued_at", "interval_start", "lead_minutes", "import_price", "export_price",
            "rrp", "price_low", "price_high", "stage"]
    if frame is None or frame.empty or "fetched_at" not in frame:
        return pd.DataFrame(columns=cols)
    issued = pd.to_datetime(frame["fetched_at"], utc=True)
    start = pd.DatetimeIndex(frame.index).tz_convert("UTC")
    future = np.asarray(start >= issued.dt.floor("5min").to_numpy())
    marked = frame["is_forecast"].astype("boolean").fillna(False).to_numpy(bool) if "is_forecast" in frame else False
    keep = (marked | future) & (issued > EPOCH).to_numpy()
    f = frame[keep]
    if f.empty:
        return pd.DataFrame(columns=cols)
    out = pd.DataFrame({
        "site_id": site_id,
        "source": f["source"].astype(str).to_numpy() if "source" in f else "unknown",
        "issued_at": issued[keep].to_numpy(),
        "interval_start": start[keep],
        "import_price": f["import_price"].to_numpy(float),
        "export_price": f["export_price"].to_numpy(float),
        "rrp": f["rrp"].to_numpy(float) if "rrp" in f else np.nan,
        "price_low": f["price_low"].to_numpy(float) if "price_low" in f else np.nan,
        "price_high": f["price_high"].to_numpy(float) if "price_high" in f else np.nan,
        "stage": f["provenance"].astype(str).to_numpy() if "provenance" in f else None,
    })
    out["lead_minutes"] = ((out["interval_start"] - pd.to_datetime(out["issued_at"], utc=True))
                           / pd.Timedelta(minutes=1)).round().astype(int)
    return out[cols]


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
