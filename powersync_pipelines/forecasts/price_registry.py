"""The price-model registry in DuckDB: fit from stored history, save versioned models, serve and audit forecasts.

Pure domain code (no Dagster): the refit asset (``defs/forecasting.py``), the live ``price_forecast`` asset
and the CLI call these. Tables: ``storage/schema_forecasting.py``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ..storage import HistoryStore
from .price_model import MODEL_KIND, FittedPriceModel, PriceModelConfig, PriceModelError, fit_price_model

LEADS_H = (1, 6, 24)
STALE_AFTER = pd.Timedelta(days=2)
# Fitted parameters are kept this many days behind a site's newest model; older rows keep their version, config
# and training window but not the ~0.6 MB of parameters (a daily refit would otherwise add ~230 MB a year).
PARAMS_KEEP_DAYS = 30


def stored_history(store: HistoryStore, site_id: str, before: pd.Timestamp, days: float) -> pd.DataFrame:
    """Realised prices (no forecast rows) strictly before ``before``: the only thing a model may learn from."""
    df = store.query(
        "SELECT interval_start, import_price, export_price, rrp FROM prices WHERE site_id = ? AND NOT is_forecast "
        "AND interval_start >= ? AND interval_start < ? ORDER BY interval_start",
        [site_id, (before - pd.Timedelta(days=days)).to_pydatetime(), before.to_pydatetime()],
    )
    if df.empty:
        return pd.DataFrame(columns=["import_price", "export_price", "rrp"],
                            index=pd.DatetimeIndex([], tz="UTC", name="interval_start"))
    df["interval_start"] = pd.to_datetime(df["interval_start"], utc=True)
    return df.set_index("interval_start")


def model_series(history: pd.DataFrame) -> tuple[pd.Series, str]:
    """RRP where every stored row has it (AEMO-based providers), else the import price."""
    rrp = history["rrp"].astype(float) if "rrp" in history else pd.Series(dtype=float)
    if len(rrp) and rrp.notna().all():
        return rrp, "rrp"
    return history["import_price"].astype(float), "import_price"


def refit_site_model(store: HistoryStore, site_id: str, timezone: str, as_of: pd.Timestamp,
                     config: PriceModelConfig | None = None, region: str | None = None,
                     partition_key: str | None = None) -> FittedPriceModel:
    """Fit on the site's stored history before ``as_of`` and record the model in ``price_models``."""
    cfg = config or PriceModelConfig()
    hist = stored_history(store, site_id, as_of, cfg.fit_days)
    if hist.empty:
        raise PriceModelError(f"site {site_id!r}: no stored realised prices before {as_of.isoformat()}")
    series, kind = model_series(hist)
    # Resample to the 5-minute grid (30-minute providers hold each price for its six slots).
    s = series[~series.index.duplicated(keep="last")].sort_index()
    s = s.reindex(pd.date_range(s.index[0], s.index[-1], freq="5min")).ffill()
    model = fit_price_model(s, as_of, timezone, cfg, series=kind)
    save_model(store, site_id, model, region=region, partition_key=partition_key)
    return model


def save_model(store: HistoryStore, site_id: str, model: FittedPriceModel, region: str | None = None,
               partition_key: str | None = None) -> str:
    row = {
        "model_id": f"{site_id}:{model.version}", "site_id": site_id, "region": region, "kind": MODEL_KIND,
        "series": model.series, "as_of": model.as_of, "train_start": model.train_start, "train_end": model.train_end,
        "n_train": model.n_train, "config": json.dumps(asdict(model.config)), "params": json.dumps(model.to_dict()),
        "created_at": pd.Timestamp.now(tz="UTC"), "partition_key": partition_key,
        "params_pruned_at": pd.NaT,  # a refit of a pruned version stores its parameters again
    }
    store.upsert("price_models", pd.DataFrame([row]), ["model_id"])
    return row["model_id"]


def prune_model_params(store: HistoryStore, site_id: str, keep_days: float = PARAMS_KEEP_DAYS) -> int:
    """Empty the parameters of the site's models fitted more than ``keep_days`` before its newest; returns how many.

    Measured from the newest model's ``as_of``, not the wall clock, so a site whose refits stopped keeps what it
    has. Pruned models are never served (:func:`load_latest_model` skips them); refitting the same partition
    stores the parameters again.
    """
    if keep_days < 0:
        raise ValueError(f"keep_days must be >= 0, got {keep_days}")
    newest = store.query("SELECT max(as_of) AS as_of FROM price_models WHERE site_id = ?", [site_id])
    if newest.empty or pd.isna(newest["as_of"].iloc[0]):
        return 0
    cutoff = pd.Timestamp(newest["as_of"].iloc[0]).tz_convert("UTC") - pd.Timedelta(days=keep_days)
    with store.connect() as con:
        con.execute("BEGIN")
        pruned = con.execute(
            "UPDATE price_models SET params = '{}', params_pruned_at = ? WHERE site_id = ? AND as_of < ? "
            "AND params_pruned_at IS NULL RETURNING model_id",
            [pd.Timestamp.now(tz="UTC").to_pydatetime(), site_id, cutoff.to_pydatetime()],
        ).fetchall()
        con.execute("COMMIT")
    return len(pruned)


@dataclass
class StoredModel:
    model_id: str
    model: FittedPriceModel
    created_at: pd.Timestamp


def load_latest_model(store: HistoryStore, site_id: str, now: pd.Timestamp | None = None) -> StoredModel | None:
    """The newest model fitted before ``now`` (a model fitted later would have seen the future)."""
    sql = "SELECT model_id, params, created_at FROM price_models WHERE site_id = ? AND params_pruned_at IS NULL"
    params: list = [site_id]
    if now is not None:
        sql += " AND as_of <= ?"
        params.append(pd.Timestamp(now).to_pydatetime())
    df = store.query(sql + " ORDER BY as_of DESC, created_at DESC LIMIT 1", params)
    if df.empty:
        return None
    r = df.iloc[0]
    return StoredModel(str(r["model_id"]), FittedPriceModel.from_dict(json.loads(r["params"])),
                       pd.Timestamp(r["created_at"]).tz_convert("UTC"))


def record_forecast(store: HistoryStore, site_id: str, now: pd.Timestamp, horizon: pd.DataFrame,
                    model_id: str | None) -> int:
    """Store a served horizon (latest per interval) and its 1/6/24 h-ahead values for drift checks."""
    now = pd.Timestamp(now)
    df = horizon[["import_price", "export_price", "p10", "p50", "p90", "provenance", "provider_weight"]].copy()
    df["site_id"], df["issued_at"], df["model_id"] = site_id, now, model_id
    df.index.name = "interval_start"
    n = store.upsert("price_forecast_horizon", df, ["site_id", "interval_start"])
    rows = []
    for lead in LEADS_H:
        t = now + pd.Timedelta(hours=lead)
        if t in horizon.index:
            h = horizon.loc[t]
            rows.append({"site_id": site_id, "interval_start": t, "lead_h": lead, "issued_at": now,
                         "import_price": float(h["import_price"]), "p10": float(h["p10"]), "p90": float(h["p90"]),
                         "provenance": str(h["provenance"]), "model_id": model_id})
    if rows:
        store.upsert("price_forecast_leads", pd.DataFrame(rows), ["site_id", "interval_start", "lead_h"])
    return n


@dataclass
class DriftReport:
    site_id: str
    lead_h: int
    n: int
    coverage_p10_p90: float | None  # share of realised prices inside [p10, p90]; ~0.8 when calibrated
    bias: float | None  # mean realised - forecast, $/kWh
    mae: float | None

    @property
    def drifting(self) -> bool:
        """Too few realised values inside the band, or a bias beyond 5 c/kWh, over enough intervals."""
        if self.n < 48 or self.coverage_p10_p90 is None:
            return False
        return self.coverage_p10_p90 < 0.5 or abs(self.bias or 0.0) > 0.05


def drift_reports(store: HistoryStore, site_id: str, now: pd.Timestamp, days: int = 7) -> list[DriftReport]:
    df = store.query(
        "SELECT lead_h, count(*) AS n, avg(CAST(inside_p10_p90 AS DOUBLE)) AS cov, avg(error) AS bias, "
        "avg(abs(error)) AS mae FROM price_forecast_drift WHERE site_id = ? AND interval_start >= ? "
        "AND interval_start < ? GROUP BY lead_h ORDER BY lead_h",
        [site_id, (now - pd.Timedelta(days=days)).to_pydatetime(), pd.Timestamp(now).to_pydatetime()],
    )
    return [DriftReport(site_id, int(r.lead_h), int(r.n), _f(r.cov), _f(r.bias), _f(r.mae)) for r in df.itertuples()]


def staleness(store: HistoryStore, site_id: str, now: pd.Timestamp) -> pd.Timedelta | None:
    """Age of the newest model's training cut-off (None: no model at all)."""
    df = store.query("SELECT max(as_of) AS as_of FROM price_models WHERE site_id = ?", [site_id])
    if df.empty or pd.isna(df["as_of"].iloc[0]):
        return None
    return pd.Timestamp(now) - pd.Timestamp(df["as_of"].iloc[0]).tz_convert("UTC")


def _f(v) -> float | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)
