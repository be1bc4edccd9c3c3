"""Solar forecast: pvlib clear-sky irradiance on the site's plane x a climatology factor.

No weather feed is assumed here: clear-sky POA (simplified Solis, which needs no turbidity tables) scaled
by a monthly clear-sky index gives an unbiased-on-average expectation. Where telemetry has the last half
hour's production, the pipeline scales the next hours by measured / modelled (fading back to the model,
:func:`.nowcast.solar_nowcast`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pvlib

from ..config import SiteConfig

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
