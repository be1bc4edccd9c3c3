"""Static time-of-use bands (Globird tariffs, Flow Power network tariffs) evaluated in the site's local time.

Bands are ``HH:MM`` local start/end; ``end`` may be ``24:00``, and a band whose end is before its start wraps
past midnight (22:00-07:00). DST is handled by evaluating each UTC interval start in the site's zone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..config import TouPeriod
from .errors import PriceDataError


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def band_masks(index: pd.DatetimeIndex, bands: Sequence[TouPeriod], tz: str) -> list[np.ndarray]:
    """For each band, which intervals (by local start time) it covers."""
    local = index.tz_convert(tz)
    mins = np.asarray(local.hour * 60 + local.minute)
    masks = []
    for b in bands:
        s, e = _minutes(b.start), _minutes(b.end)
        if s == e:
            masks.append(np.ones(len(mins), dtype=bool))  # a 24-hour band
        elif s < e:
            masks.append((mins >= s) & (mins < e))
        else:
            masks.append((mins >= s) | (mins < e))
    return masks


def tou_prices(index: pd.DatetimeIndex, bands: Sequence[TouPeriod], tz: str, provider: str,
               what: str = "tou") -> tuple[np.ndarray, np.ndarray]:
    """(import, export) $/kWh per interval; the first matching band wins; an uncovered time is an error."""
    imp = np.full(len(index), np.nan)
    exp = np.full(len(index), np.nan)
    for b, m in zip(bands, band_masks(index, bands, tz), strict=True):
        free = m & np.isnan(imp)
        imp[free] = b.import_price
        exp[free] = b.export_price
    if np.isnan(imp).any():
        first = index[np.isnan(imp)][0].tz_convert(tz)
        raise PriceDataError(provider, "tou_gap", f"{what} bands do not cover {first:%H:%M} local time")
    return imp, exp


def in_window(index: pd.DatetimeIndex, start: str, end: str, tz: str) -> np.ndarray:
    """Intervals whose local start lies in ``[start, end)`` (wrapping past midnight when end < start)."""
    return band_masks(index, [TouPeriod(start=start, end=end, import_price=0.0)], tz)[0]
