"""What the bridge remembers per site across restarts (``ha_settings``, ``ha_counters`` in the history file):
the settings a person chose in HA that are the bridge's own (the force buttons' duration), and the highest value
published for each energy counter, so HA never sees a counter go down."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from ..storage import HistoryStore


def load_settings(store: HistoryStore, site_id: str, defaults: Mapping[str, Any],
                  parsers: Mapping[str, Callable[[Any], Any]]) -> dict[str, Any]:
    """``defaults`` overridden by the stored values; a stored value its parser refuses (a row from another
    version, a hand edit) is skipped, so the default stands."""
    out = dict(defaults)
    rows = store.query("SELECT setting, value FROM ha_settings WHERE site_id = ?", [site_id])
    for setting, text in zip(rows["setting"], rows["value"], strict=True):
        if setting not in parsers:
            continue
        try:
            out[setting] = parsers[setting](json.loads(text))
        except (ValueError, TypeError):
            continue
    return out


def save_setting(store: HistoryStore, site_id: str, setting: str, value: Any, now: pd.Timestamp) -> None:
    row = pd.DataFrame([{"site_id": site_id, "setting": setting, "value": json.dumps(value),
                         "set_at": pd.Timestamp(now).tz_convert("UTC")}])
    store.upsert("ha_settings", row, ["site_id", "setting"])


def monotone(store: HistoryStore, site_id: str, counters: Mapping[str, float | None],
             now: pd.Timestamp) -> dict[str, float | None]:
    """Each counter, never below the highest value published before (stored); new highs are stored.

    A lifetime energy integral only grows as telemetry is appended, but a corrected or inserted row can lower it
    a little; HA reads any decrease of a ``total_increasing`` sensor as a meter reset and would count the
    whole total again, so the published value holds at its high-water mark until the integral passes it."""
    rows = store.query("SELECT counter, value FROM ha_counters WHERE site_id = ?", [site_id])
    high = dict(zip(rows["counter"], rows["value"].astype(float), strict=True))
    out: dict[str, float | None] = {}
    raised: list[dict[str, Any]] = []
    for name, value in counters.items():
        best = high.get(name)
        if value is None or not math.isfinite(value):
            out[name] = best
            continue
        if best is None or value > best:
            raised.append({"site_id": site_id, "counter": name, "value": float(value),
                           "updated_at": pd.Timestamp(now).tz_convert("UTC")})
            best = float(value)
        out[name] = best
    if raised:
        store.upsert("ha_counters", pd.DataFrame(raised), ["site_id", "counter"])
    return out
