"""Price adjustments applied to what the battery is *told*, never to what the optimizer plans with.

Order (behaviour.md §4.2): export boost, then chip mode (which tests the *unboosted* price), then spike
protection (which needs the final sell prices). The input frame is left untouched; the output keeps the real
prices in ``import_price_real``/``export_price_real`` and says per row which rules fired (``adjustments``),
so the adjusted frame can be shown as its own asset and an already-adjusted frame is never adjusted twice.

Windows are local wall-clock time of the interval *start* in the site's zone, [start, end), wrapping past
midnight when end < start. On DST days this follows the wall clock, like the battery does.
"""

from __future__ import annotations

from datetime import time

import numpy as np
import pandas as pd

from ..config import SiteConfig
from ..config.tariff_features import ChipModeSettings, ExportBoostSettings, TariffFeatures, tariff_features

REAL_COLUMNS = ("import_price_real", "export_price_real")


def is_adjusted(prices: pd.DataFrame) -> bool:
    return all(c in prices.columns for c in REAL_COLUMNS)


def in_local_window(index: pd.DatetimeIndex, tz: str, start: time, end: time) -> np.ndarray:
    """True where the local wall-clock start time falls in [start, end) (wrapping past midnight)."""
    local = index.tz_convert(tz)
    minutes = local.hour.to_numpy() * 60 + local.minute.to_numpy()
    s, e = start.hour * 60 + start.minute, end.hour * 60 + end.minute
    if s < e:
        return (minutes >= s) & (minutes < e)
    return (minutes >= s) | (minutes < e)


def export_boost(export: np.ndarray, in_window: np.ndarray, cfg: ExportBoostSettings) -> np.ndarray:
    """In the window, where the price reaches the threshold (threshold 0 = always): max(price + offset, floor)."""
    active = in_window & ((cfg.threshold_c == 0) | (export >= cfg.threshold_c / 100.0))
    boosted = np.maximum(export + cfg.offset_c / 100.0, cfg.floor_c / 100.0)
    return np.where(active, boosted, export)


def chip_mode(export: np.ndarray, unboosted: np.ndarray, in_window: np.ndarray, cfg: ChipModeSettings) -> np.ndarray:
    """In the window, sell is 0 unless the real (unboosted) export price is at least the threshold."""
    suppress = in_window & (unboosted < cfg.threshold_c / 100.0)
    return np.where(suppress, 0.0, export)


def spike_protection(imp: np.ndarray, export: np.ndarray, flagged: np.ndarray, margin: float) -> np.ndarray:
    """Flagged intervals buy at max(own price, best sell in the frame + margin): grid charging can't pay off."""
    if not flagged.any():
        return imp
    ceiling = float(np.nanmax(export)) + margin if len(export) else margin
    return np.where(flagged, np.maximum(imp, ceiling), imp)


def apply_adjustments(prices: pd.DataFrame, site: SiteConfig, features: TariffFeatures | None = None) -> pd.DataFrame:
    """The price frame the tariff payload is built from (see module docstring)."""
    if is_adjusted(prices):
        raise ValueError(f"site {site.id!r}: price frame is already adjusted (has {', '.join(REAL_COLUMNS)})")
    feats = features or tariff_features(site)
    out = prices.copy()
    imp_real = out["import_price"].to_numpy(dtype=float)
    exp_real = out["export_price"].to_numpy(dtype=float)
    index = pd.DatetimeIndex(out.index)
    labels = [[] for _ in range(len(out))]

    def mark(mask: np.ndarray, label: str) -> None:
        for i in np.flatnonzero(mask):
            labels[i].append(label)

    exp = exp_real.copy()
    if feats.export_boost is not None:
        win = in_local_window(index, site.timezone, *feats.export_boost.window)
        new = export_boost(exp, win, feats.export_boost)
        mark(new != exp, "export_boost")
        exp = new
    if feats.chip_mode is not None:
        win = in_local_window(index, site.timezone, *feats.chip_mode.window)
        new = chip_mode(exp, exp_real, win, feats.chip_mode)
        mark(new != exp, "chip_mode")
        exp = new
    imp = imp_real.copy()
    flagged = np.zeros(len(out), dtype=bool)
    if feats.spike_protection and "spike_status" in out:
        flagged = out["spike_status"].isin(["potential", "spike"]).to_numpy()
        imp = spike_protection(imp, exp, flagged, feats.spike_margin)
        mark(flagged, "spike_protection")
    out["import_price_real"], out["export_price_real"] = imp_real, exp_real
    out["import_price"], out["export_price"] = imp, exp
    out["spike_protected"] = flagged
    out["adjustments"] = [",".join(x) for x in labels]
    return out
