"""Tesla ``tariff_content_v2`` payloads: the rolling dynamic tariff and the force/spike tariffs.

Shape (reference/devices.md §3.2; real sample ``data/real/tesla/python-tesla-fleet-api/tariff_v2_sample.json``):
one season ``Summer`` covering the whole year (``Winter`` empty), 48 ``PERIOD_HH_MM`` half hours named by
their *local* start time, each valid every day (``toDayOfWeek: 6``, zero-valued fields omitted, the last one
ends ``toHour: 24``), ``energy_charges`` (buy) and ``sell_tariff.energy_charges`` (sell) in currency/kWh.

Tesla rules the payload honours:
* no negative rates: Time-Based Control does not take them, so they are clamped to 0 (a negative buy
  already makes 0 the cheapest slot of the day; behaviour.md §4.2);
* "Buy price should be >= sell price at any given time. If not, the buy price will be set equal to the sell
  price." (developer.tesla.com, Fleet API energy endpoints, time_of_use_settings). We apply that rule
  ourselves so the stored payload is exactly what the Powerwall acts on and diffs stay honest;
* 4 decimal places.
Uploading (``POST /api/1/energy_sites/{id}/time_of_use_settings`` with ``{"tou_settings": payload}``) and the
save → upload → restore cycle belong to the Tesla battery driver; this module only builds dicts.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..config import SiteConfig
from .adjustments import apply_adjustments, is_adjusted
from .periods import PERIOD_NAMES, HalfHour, half_hour_rates, rolling_half_hours

PROVIDER_LABELS = {
    "amber": ("AMBER", "Amber Electric"),
    "aemo": ("AEMO", "AEMO wholesale"),
    "flow_power": ("FLOW_POWER", "Flow Power"),
    "globird": ("GLOBIRD", "GloBird Energy"),
    "octopus": ("OCTOPUS", "Octopus Energy"),
    "replay": ("REPLAY", "AEMO replay"),
    "normalized": ("NORMALIZED", "PowerSync prices"),
}


def period_span(hour: int, minute: int) -> dict[str, int]:
    """One ``periods`` entry: every day of the week, [start, start+30 min), zero fields omitted as Tesla writes."""
    end = hour * 60 + minute + 30
    to_hour, to_minute = divmod(end, 60)
    span: dict[str, int] = {"toDayOfWeek": 6}
    if hour:
        span["fromHour"] = hour
    if minute:
        span["fromMinute"] = minute
    if to_hour:
        span["toHour"] = to_hour
    if to_minute:
        span["toMinute"] = to_minute
    return span


def tou_periods() -> dict[str, Any]:
    return {
        name: {"periods": [period_span(int(name[7:9]), int(name[10:12]))]} for name in PERIOD_NAMES
    }


def _seasons() -> dict[str, Any]:
    return {
        "Summer": {"fromDay": 1, "toDay": 31, "fromMonth": 1, "toMonth": 12, "tou_periods": tou_periods()},
        "Winter": {},
    }


def _charges(rates: Mapping[str, float]) -> dict[str, Any]:
    return {"ALL": {"rates": {"ALL": 0}}, "Summer": {"rates": {n: rates[n] for n in PERIOD_NAMES}}, "Winter": {}}


def round_rate(x: float) -> float:
    """4 dp, never ``-0.0`` (it would make equal payloads hash differently)."""
    if not math.isfinite(x):
        raise ValueError(f"rate must be finite, got {x}")
    return round(x, 4) + 0.0


def tesla_rates(buy: Mapping[str, float], sell: Mapping[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """Apply Tesla's rules: clamp negatives to 0, raise buy to sell where sell > buy, round to 4 dp."""
    out_buy, out_sell = {}, {}
    for n in PERIOD_NAMES:
        s = round_rate(max(0.0, float(sell[n])))
        b = round_rate(max(0.0, float(buy[n]), s))
        out_buy[n], out_sell[n] = b, s
    return out_buy, out_sell


def tariff_content(buy: Mapping[str, float], sell: Mapping[str, float], *, code: str, name: str, utility: str,
                   currency: str) -> dict[str, Any]:
    """A complete ``tariff_content_v2`` object from 48 buy and 48 sell rates (already Tesla-clean)."""
    missing = [n for n in PERIOD_NAMES if n not in buy or n not in sell]
    if missing:
        raise ValueError(f"tariff {code}: rates missing for {', '.join(missing[:4])}{'…' if len(missing) > 4 else ''}")
    return {
        "code": code,
        "name": name,
        "utility": utility,
        "currency": currency,
        "version": 1,
        "daily_charges": [{"name": "Charge"}],
        "demand_charges": {"ALL": {"rates": {"ALL": 0}}, "Summer": {}, "Winter": {}},
        "energy_charges": _charges(buy),
        "seasons": _seasons(),
        "sell_tariff": {
            "name": f"{name.removesuffix(' (PowerSync)')} (managed by PowerSync)",
            "energy_charges": _charges(sell),
            "seasons": _seasons(),
        },
    }


def provider_labels(site: SiteConfig) -> tuple[str, str]:
    return PROVIDER_LABELS.get(site.provider.kind, (site.provider.kind.upper(), site.provider.kind))


def tesla_payload_from_rates(rates: pd.DataFrame, site: SiteConfig) -> dict[str, Any]:
    """Wrap ``half_hour_rates`` output as ``{"tariff_content_v2": ...}`` for ``site``."""
    buy, sell = tesla_rates(rates["buy"].to_dict(), rates["sell"].to_dict())
    code, utility = provider_labels(site)
    return {
        "tariff_content_v2": tariff_content(
            buy, sell, code=f"POWER_SYNC:{code}", name=f"{utility} (PowerSync)", utility=utility,
            currency=site.currency or "AUD",
        )
    }


def build_tesla_tariff(prices: pd.DataFrame, site: SiteConfig, now: pd.Timestamp,
                       plan: pd.DataFrame | None = None) -> dict[str, Any]:
    """The dynamic tariff the site's Powerwall should have at ``now``: ``{"tariff_content_v2": {...}}``.

    ``prices`` is a normalised price frame. If it has not been through ``adjustments.apply_adjustments`` yet,
    the site's adjustments (spike protection, export boost, chip mode) are applied here, so the payload always
    sees adjusted prices while the optimizer keeps the real ones.
    """
    adjusted = prices if is_adjusted(prices) else apply_adjustments(prices, site)
    rates = half_hour_rates(adjusted, site.tz, now, plan)
    return tesla_payload_from_rates(rates, site)


# -- force charge / force discharge / spike tariffs ------------------------------------------------------
def window_names(now: pd.Timestamp, site: SiteConfig, minutes: int) -> list[str]:
    """Local period names covering [current half hour, now + minutes): the force window, rounded up."""
    if not 1 <= minutes <= 24 * 60:
        raise ValueError(f"force window must be 1-1440 minutes, got {minutes}")
    halves: list[HalfHour] = sorted(rolling_half_hours(now, site.tz), key=lambda h: h.order)
    end = pd.Timestamp(now).tz_convert("UTC") + pd.Timedelta(minutes=minutes)
    names = [h.name for h in halves if h.start_utc < end]
    return names or [halves[0].name]


def _flat_tariff(site: SiteConfig, inside: list[str], buy_in: float, sell_in: float, buy_out: float,
                 sell_out: float, code: str, label: str) -> dict[str, Any]:
    buy = {n: (buy_in if n in inside else buy_out) for n in PERIOD_NAMES}
    sell = {n: (sell_in if n in inside else sell_out) for n in PERIOD_NAMES}
    b, s = tesla_rates(buy, sell)
    return {"tariff_content_v2": tariff_content(b, s, code=code, name=label, utility="PowerSync",
                                                currency=site.currency or "AUD")}


def force_charge_tariff(site: SiteConfig, now: pd.Timestamp, minutes: int = 30) -> dict[str, Any]:
    """Grid charging in the window: buy free inside, very dear outside, nothing worth selling anywhere."""
    inside = window_names(now, site, minutes)
    return _flat_tariff(site, inside, 0.0, 0.0, 10.0, 0.0, f"POWER_SYNC:CHARGE_{minutes}",
                        f"Force charge {minutes} min (PowerSync)")


def force_discharge_tariff(site: SiteConfig, now: pd.Timestamp, minutes: int = 30) -> dict[str, Any]:
    """Export in the window: selling is worth $99/kWh inside (buy equal, as Tesla requires sell <= buy)."""
    inside = window_names(now, site, minutes)
    return _flat_tariff(site, inside, 99.0, 99.0, 0.30, 0.08, f"POWER_SYNC:DISCHARGE_{minutes}",
                        f"Force discharge {minutes} min (PowerSync)")


def spike_tariff(site: SiteConfig, now: pd.Timestamp, rrp_per_mwh: float, multiple: float = 3.0,
                 hours: float = 2.0) -> dict[str, Any]:
    """AEMO spike: sell at ``multiple`` × spot for the next ``hours``; buy dear everywhere so nothing charges."""
    if rrp_per_mwh <= 0:
        raise ValueError(f"spike tariff needs a positive RRP, got {rrp_per_mwh} $/MWh")
    sell_spike = rrp_per_mwh / 1000.0 * multiple
    buy = max(2.0 * sell_spike, 5.0)
    inside = window_names(now, site, int(hours * 60))
    return _flat_tariff(site, inside, buy, sell_spike, buy, 0.08, "POWER_SYNC:AEMO_SPIKE",
                        "AEMO spike (PowerSync)")


def payload_hash(payload: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON (sorted keys, no spaces): equal payloads hash equal across runs."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()
