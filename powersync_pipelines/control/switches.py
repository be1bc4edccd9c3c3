"""The site switches in effect: the sites file's values, overridden per site by the last service call stored in
``site_settings``. :func:`in_effect` is applied where a site enters the planning cycle (``run_cycle``;
:func:`in_effect_many`, one query for all of a run's sites, in the Dagster planning assets), so the planner, the
battery push and the TOU sync all read one answer."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..config import SiteConfig
from ..config.switches import COST_FUNCTIONS, SWITCH_NAMES, on_off
from ..storage import HistoryStore


class SwitchError(ValueError):
    """A switch name or value that does not exist."""


@dataclass(frozen=True)
class Switches:
    optimization: bool
    auto_tou_sync: bool
    cost_function: str
    source: dict[str, str]  # setting -> "sites_file" | "service"

    def as_dict(self) -> dict[str, Any]:
        """As ``powersync status`` and the services show them (``on``/``off``, the objective, where each is from)."""
        return {"optimization": on_off(self.optimization), "auto_tou_sync": on_off(self.auto_tou_sync),
                "cost_function": self.cost_function, "source": dict(self.source)}


def _parse(setting: str, text: str) -> bool | str:
    if setting == "cost_function":
        if text not in COST_FUNCTIONS:
            raise SwitchError(f"cost_function must be cost or self_consumption, got {text!r}")
        return text
    if text not in ("on", "off"):
        raise SwitchError(f"{setting} must be on or off, got {text!r}")
    return text == "on"


def _readable(rows: Iterable[tuple[str, object]]) -> dict[str, bool | str]:
    """The switch values among ``(setting, value)`` rows. A row this version cannot read is skipped, so a bad
    row never stops the cycle: the file's value stands."""
    out: dict[str, bool | str] = {}
    for setting, value in rows:
        if setting in SWITCH_NAMES:
            try:
                out[setting] = _parse(setting, str(value))
            except SwitchError:
                continue
    return out


def stored(store: HistoryStore, site_id: str) -> dict[str, bool | str]:
    """The service-set values for ``site_id`` (only those ever set)."""
    df = store.query("SELECT setting, value FROM site_settings WHERE site_id = ?", [site_id])
    return _readable(zip(df["setting"], df["value"], strict=True))


IDS_PER_QUERY = 5000  # site ids bound in one statement (PostgreSQL takes at most 65,535 parameters)


def stored_many(store: HistoryStore, site_ids: Iterable[str]) -> dict[str, dict[str, bool | str]]:
    """:func:`stored` for many sites in one query (per ``IDS_PER_QUERY`` ids), so a planning stage over a
    fleet reads its switches once instead of once per site. Sites with nothing stored are absent."""
    ids = list(dict.fromkeys(site_ids))
    rows: dict[str, list[tuple[str, object]]] = {}
    for i in range(0, len(ids), IDS_PER_QUERY):
        chunk = ids[i:i + IDS_PER_QUERY]
        df = store.query(f"SELECT site_id, setting, value FROM site_settings WHERE site_id IN "
                         f"({', '.join('?' * len(chunk))})", chunk)
        for site_id, setting, value in zip(df["site_id"], df["setting"], df["value"], strict=True):
            rows.setdefault(str(site_id), []).append((setting, value))
    return {site_id: found for site_id, r in rows.items() if (found := _readable(r))}


def effective(store: HistoryStore, site: SiteConfig) -> Switches:
    over = stored(store, site.id)
    values = {name: over.get(name, getattr(site, name)) for name in SWITCH_NAMES}
    source = {name: "service" if name in over else "sites_file" for name in SWITCH_NAMES}
    return Switches(optimization=bool(values["optimization"]), auto_tou_sync=bool(values["auto_tou_sync"]),
                    cost_function=str(values["cost_function"]), source=source)


def _applied(site: SiteConfig, over: dict[str, bool | str]) -> SiteConfig:
    changed = {k: v for k, v in over.items() if getattr(site, k) != v}
    return site.model_copy(update=changed) if changed else site


def in_effect(store: HistoryStore | None, site: SiteConfig) -> SiteConfig:
    """``site`` with the stored switch values in place of the file's (the site itself when nothing is stored)."""
    if store is None:
        return site
    return _applied(site, stored(store, site.id))


def in_effect_many(store: HistoryStore | None, sites: Sequence[SiteConfig]) -> list[SiteConfig]:
    """:func:`in_effect` for every site of ``sites`` (same order) with one read of ``site_settings``."""
    if store is None:
        return list(sites)
    over = stored_many(store, [s.id for s in sites])
    return [_applied(site, over.get(site.id, {})) for site in sites]


def save(store: HistoryStore, site_id: str, setting: str, value: bool | str, now: pd.Timestamp,
         set_by: str) -> None:
    """Persist one switch for ``site_id`` (replaces the previous call's value)."""
    if setting not in SWITCH_NAMES:
        raise SwitchError(f"unknown switch {setting!r}; switches: {', '.join(SWITCH_NAMES)}")
    text = on_off(value) if isinstance(value, bool) else str(value)
    _parse(setting, text)
    row = pd.DataFrame([{"site_id": site_id, "setting": setting, "value": text,
                         "set_at": pd.Timestamp(now).tz_convert("UTC"), "set_by": set_by}])
    store.upsert("site_settings", row, ["site_id", "setting"])
