"""Solar forecast: Solcast's rooftop forecast where the site has one, else pvlib clear-sky x climatology.

:func:`site_solar_forecast` is the one entry point the live planner calls. With ``solar.solcast_resource_id``
it serves Solcast's P50 with its P10/P90 (``forecasts/solcast.py``: cached in DuckDB, refreshed within the
daily call budget); when the key is missing, the budget is spent, the call failed or the cache is too old it
serves pvlib instead and says why in the provenance. pvlib needs no weather feed: clear-sky POA (simplified
Solis, which needs no turbidity tables) scaled by a monthly clear-sky index is an unbiased-on-average
expectation. Where telemetry has the last half hour's production, the next hours are scaled by measured /
forecast for that half hour (fading back, :func:`.nowcast.solar_nowcast`); P10/P90 are scaled alike.

Stored in ``forecasts`` (kind ``solar``): ``value`` = P50 kW, ``p10`` / ``p90`` beside it (NULL for pvlib,
which has no spread), ``model`` = the provenance: ``solcast``, ``solcast+pvlib_fill`` (Solcast with a few
slots it did not cover filled by pvlib), ``pvlib_clearsky_climatology`` (no Solcast configured) or
``pvlib_clearsky_climatology[solcast:<reason>]`` (Solcast configured but not usable), each ending in
``+nowcast`` when the last half hour corrected it. :func:`stored_solar_forecast` reads them back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import httpx
import numpy as np
import pandas as pd
import pvlib

from ..config import SiteConfig
from ..storage import HistoryStore
from ..timegrid import STEP
from .nowcast import RECENT_STEPS, solar_nowcast
from .solcast import cached_p50, solcast_forecast

PVLIB_MODEL = "pvlib_clearsky_climatology"
# Solcast must cover this share of the first 24 h to be served (the rest filled by pvlib); less is a stale
# or broken cache, and pvlib serves the whole horizon.
MIN_SOLCAST_COVERAGE = 0.9

# Mean clear-sky index by month (southern-hemisphere temperate climate: sunnier summers).
_CLEAR_SKY_INDEX_SOUTH = [0.78, 0.77, 0.72, 0.66, 0.60, 0.56, 0.58, 0.62, 0.66, 0.70, 0.73, 0.76]


def clear_sky_index(month: np.ndarray, latitude: float) -> np.ndarray:
    table = np.asarray(_CLEAR_SKY_INDEX_SOUTH)
    idx = (month - 1) if latitude < 0 else (month + 5) % 12  # shift by six months north of the equator
    return table[idx]


def solar_forecast_kw(site: SiteConfig, index: pd.DatetimeIndex, climatology: bool = True) -> pd.Series:
    """Mean AC power (kW) in each interval of ``index`` (UTC interval starts, regular grid)."""
    if site.solar is None or site.solar.peak_kw == 0 or len(index) == 0:
        return pd.Series(0.0, index=index, name="solar_kw")
    step = index[1] - index[0] if len(index) > 1 else pd.Timedelta(minutes=5)
    mid = index + step / 2
    lat, lon = site.location
    loc = pvlib.location.Location(lat, lon, tz="UTC")
    solpos = loc.get_solarposition(mid)
    cs = loc.get_clearsky(mid, model="simplified_solis", solar_position=solpos)
    poa = pvlib.irradiance.get_total_irradiance(
        surface_tilt=site.solar.tilt,
        surface_azimuth=site.solar.azimuth,
        solar_zenith=solpos["apparent_zenith"],
        solar_azimuth=solpos["azimuth"],
        dni=cs["dni"],
        ghi=cs["ghi"],
        dhi=cs["dhi"],
    )["poa_global"].fillna(0.0)
    derate = 1.0 - site.solar.losses_pct / 100.0
    kw = (poa.to_numpy() / 1000.0) * site.solar.peak_kw * derate
    if climatology:
        kw = kw * clear_sky_index(mid.month.to_numpy(), lat)
    kw = np.clip(kw, 0.0, site.solar.peak_kw)
    return pd.Series(kw, index=index, name="solar_kw")


@dataclass(frozen=True)
class SolarProvenance:
    """Where a solar forecast came from; ``model`` is what ``forecasts.model`` stores."""

    source: str  # solcast | pvlib
    model: str
    reason: str | None = None  # why pvlib replaced a configured Solcast (key_missing, budget_spent, http_429, ...)
    detail: str = ""
    refresh_error: str | None = None  # a Solcast refresh failed this cycle but the cache still served
    fetched_at: str | None = None  # the oldest Solcast response the values come from (ISO UTC)
    call_made: bool = False
    calls_today: int | None = None
    daily_limit: int | None = None
    filled_slots: int = 0  # Solcast slots pvlib filled
    nowcast: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class SolarForecast(NamedTuple):
    kw: pd.Series  # P50, kW per 5-minute interval start (UTC)
    p10: pd.Series | None  # None when the source has no spread (pvlib)
    p90: pd.Series | None
    provenance: SolarProvenance


def site_solar_forecast(site: SiteConfig, index: pd.DatetimeIndex, store: HistoryStore | None = None,
                        now: pd.Timestamp | None = None, *, recent: pd.Series | None = None,
                        wall_now: pd.Timestamp | None = None, client: httpx.Client | None = None) -> SolarForecast:
    """The site's solar forecast on ``index`` (kW, P10, P90, provenance).

    ``recent``: 5-minute means of measured production over the last half hour before ``now`` (the nowcast's
    input); ``wall_now`` and ``client`` are for tests (the quota counts in wall-clock UTC days).
    """
    now = pd.Timestamp(now if now is not None else (index[0] if len(index) else pd.Timestamp.now(tz="UTC")))
    pv = solar_forecast_kw(site, index)
    p10 = p90 = None
    configured = bool(site.solar and site.solar.solcast_resources) and len(index) > 0
    if not configured:
        prov = SolarProvenance("pvlib", PVLIB_MODEL)
        kw = pv
    else:
        sc = solcast_forecast(site, index, store, now, wall_now=wall_now, client=client)
        p50 = sc.grid["pv_estimate"]
        coverage = float(p50.iloc[:288].notna().mean())
        common = {"refresh_error": sc.refresh_error, "call_made": sc.call_made, "calls_today": sc.calls_today,
                  "daily_limit": sc.daily_limit,
                  "fetched_at": sc.fetched_at.isoformat() if sc.fetched_at is not None else None}
        if sc.reason is None and coverage >= MIN_SOLCAST_COVERAGE and not np.isnan(p50.iloc[0]):
            filled = p50.isna()
            kw = pd.Series(np.where(filled, pv.to_numpy(), p50.to_numpy()), index=index, name="solar_kw")
            p10 = sc.grid["pv_estimate10"].rename("solar_p10_kw")
            p90 = sc.grid["pv_estimate90"].rename("solar_p90_kw")
            model = "solcast+pvlib_fill" if filled.any() else "solcast"
            prov = SolarProvenance("solcast", model, filled_slots=int(filled.sum()),
                                   detail=f"Solcast {site.solar.solcast_resource_id}", **common)
        else:
            reason = sc.reason or "no_coverage"
            detail = sc.detail or f"Solcast covers {coverage:.0%} of the next 24 h"
            prov = SolarProvenance("pvlib", f"{PVLIB_MODEL}[solcast:{reason}]", reason=reason, detail=detail, **common)
            kw = pv
    if recent is not None and len(kw):
        kw, p10, p90, prov = _nowcast(site, kw, p10, p90, prov, recent, now, store, wall_now)
    return SolarForecast(kw, p10, p90, prov)


def _nowcast(site: SiteConfig, kw: pd.Series, p10: pd.Series | None, p90: pd.Series | None,
             prov: SolarProvenance, recent: pd.Series, now: pd.Timestamp, store: HistoryStore | None,
             wall_now: pd.Timestamp | None) -> tuple[pd.Series, pd.Series | None, pd.Series | None, SolarProvenance]:
    """Scale P50 (and P10/P90 by the same factor) by measured / forecast over the last half hour."""
    grid = pd.date_range(now - RECENT_STEPS * STEP, periods=RECENT_STEPS, freq=STEP)
    if prov.source == "solcast":
        modelled = cached_p50(site, grid, store, wall_now).reindex(recent.index)
    else:
        modelled = solar_forecast_kw(site, grid).reindex(recent.index)
    base = kw.to_numpy()
    values = solar_nowcast(base, recent.to_numpy(), modelled.to_numpy())
    if site.solar is not None:  # a bright half hour never lifts the forecast above the array's rating
        values = np.minimum(values, site.solar.peak_kw)
    if np.array_equal(values, base):
        return kw, p10, p90, prov
    factor = np.divide(values, base, out=np.ones_like(base), where=base > 0)
    cap = site.solar.peak_kw if site.solar is not None else np.inf

    def scaled(s: pd.Series | None) -> pd.Series | None:
        return None if s is None else pd.Series(np.minimum(s.to_numpy() * factor, cap), index=s.index, name=s.name)

    prov = SolarProvenance(**{**prov.as_dict(), "model": prov.model + "+nowcast", "nowcast": True})
    return pd.Series(values, index=kw.index, name=kw.name), scaled(p10), scaled(p90), prov


def store_solar_forecast(store: HistoryStore, site_id: str, fc: SolarForecast, issued_at: pd.Timestamp) -> int:
    """Upsert into ``forecasts`` (kind ``solar``): P50 in ``value``, P10/P90 beside it, provenance in ``model``."""
    df = pd.DataFrame({"value": fc.kw.to_numpy(dtype=float)}, index=fc.kw.index)
    df["p10"] = fc.p10.to_numpy(dtype=float) if fc.p10 is not None else np.nan
    df["p90"] = fc.p90.to_numpy(dtype=float) if fc.p90 is not None else np.nan
    return store.upsert_forecasts(site_id, "solar", df, fc.provenance.model, issued_at)


def stored_solar_forecast(store: HistoryStore, site_id: str, index: pd.DatetimeIndex) -> pd.DataFrame:
    """The stored solar forecast on ``index``: ``value`` (P50 kW), ``p10``, ``p90`` (NaN for pvlib) and
    ``model``; rows the store lacks are NaN (the planner and the learned model read P10/P90 from here)."""
    df = store.query(
        "SELECT interval_start, value, p10, p90, model FROM forecasts WHERE site_id = ? AND kind = 'solar' "
        "AND interval_start >= ? AND interval_start <= ? ORDER BY interval_start",
        [site_id, index[0].to_pydatetime(), index[-1].to_pydatetime()])
    df.index = pd.DatetimeIndex(pd.to_datetime(df.pop("interval_start"), utc=True), name="interval_start").as_unit("ns")
    return df.reindex(index)
