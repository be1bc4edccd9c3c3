"""Amber Electric: current, past and forecast prices for all three channels, normalised.

Amber publishes c/kWh inc GST; ``feedIn`` is negative when the owner is paid, so it is flipped once here
(export_price > 0 = paid). Forecast intervals carry ``advancedPrice`` {low, predicted, high}: ``predicted`` is
Amber's own best estimate and is preferred over ``perKwh``; low/high become ``price_low``/``price_high``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from ..config import SiteConfig
from .errors import PriceDataError
from .http import RetryPolicy, base_url, bearer, get_json, make_client, parse_json_bytes
from .quality import check_price_unit, drop_repeats, price_frame, shown

PROVIDER = "amber"
CHANNELS = ("general", "feedIn", "controlledLoad")
INTERVAL_TYPES = {"ActualInterval": "actual", "CurrentInterval": "current", "ForecastInterval": "forecast"}
DURATIONS = frozenset({5, 15, 30, 60})  # minutes; Amber serves 5 and 30, coarser grids must still tile an hour
MAX_INTERVALS = 2048  # the API caps next/previous; more is refused
NEM_OFFSET = pd.Timedelta(hours=10)
# Amber's ``network`` field on /sites -> NEM region (for AEMO fallbacks and spike watch).
NETWORK_REGIONS = {
    "Ausgrid": "NSW1", "Endeavour Energy": "NSW1", "Essential Energy": "NSW1", "Evoenergy": "NSW1",
    "Energex": "QLD1", "Ergon Energy": "QLD1",
    "SAPN": "SA1", "SA Power Networks": "SA1",
    "CitiPower": "VIC1", "Powercor": "VIC1", "Jemena": "VIC1", "United Energy": "VIC1", "AusNet Services": "VIC1",
    "TasNetworks": "TAS1",
}


_TZ_SUFFIX = r"(?:Z|[+-]\d{2}:?\d{2})$"
REQUIRED = ("type", "duration", "endTime", "perKwh", "channelType")


def _first_bad(mask: pd.Series) -> int:
    return int(mask.to_numpy().nonzero()[0][0])


def _interval_rows(items: list[Any], provider: str) -> pd.DataFrame:
    """One row per (channel, interval) with its UTC start, validated column by column (vectorised: a
    day of 5-minute prices is 864 objects and a backtest reads hundreds of days)."""
    if not isinstance(items, list):
        raise PriceDataError(provider, "malformed_payload", f"expected a JSON array of intervals, got {type(items).__name__}")
    if not items:
        raise PriceDataError(provider, "empty_payload", "no general/feedIn/controlledLoad intervals in the response")
    bad = next((n for n, it in enumerate(items) if not isinstance(it, dict)), None)
    if bad is not None:
        raise PriceDataError(provider, "malformed_payload", f"item {bad} is not an object")
    raw = pd.DataFrame.from_records(items)
    for key in REQUIRED:
        if key not in raw:
            raise PriceDataError(provider, "malformed_payload", f"item 0 lacks ['{key}']")
        if key != "perKwh" and raw[key].isna().any():
            raise PriceDataError(provider, "malformed_payload", f"item {_first_bad(raw[key].isna())} lacks ['{key}']")
    raw = raw[raw["channelType"].isin(CHANNELS)]  # unknown future channel types are not ours to price
    if raw.empty:
        raise PriceDataError(provider, "empty_payload", "no general/feedIn/controlledLoad intervals in the response")
    end_text = raw["endTime"].astype(str)
    naive = ~end_text.str.contains(_TZ_SUFFIX, regex=True)
    if naive.any():
        n = raw.index[_first_bad(naive)]
        raise PriceDataError(provider, "naive_timestamps", f"item {n}: endTime {end_text.loc[n]!r} has no offset")
    try:
        end = pd.to_datetime(end_text, utc=True, format="ISO8601", errors="raise")
        duration = pd.to_numeric(raw["duration"], errors="coerce").fillna(-1)
        per_kwh = pd.to_numeric(raw["perKwh"], errors="coerce").astype(float)
    except (TypeError, ValueError, OverflowError) as exc:
        raise PriceDataError(provider, "malformed_payload", f"intervals: {str(exc).splitlines()[0]}") from None
    odd = ~duration.isin(DURATIONS)
    if odd.any():
        n = raw.index[_first_bad(odd)]
        raise PriceDataError(provider, "malformed_payload", f"item {n}: duration {shown(items[n].get('duration'))} "
                             f"is not one of {sorted(DURATIONS)} minutes")
    duration = duration.astype(int)
    bad = ~np.isfinite(per_kwh.to_numpy())
    if bad.any():
        n = raw.index[_first_bad(pd.Series(bad))]
        raise PriceDataError(provider, "nan_prices",
                             f"{int(bad.sum())} interval(s) without a finite perKwh, first item {n} "
                             f"({raw.loc[n, 'channelType']} ending {raw.loc[n, 'endTime']}: got {shown(items[n].get('perKwh'))})")
    if "nemTime" in raw:
        nem_text = raw["nemTime"].astype(str)
        try:
            nem = pd.to_datetime(nem_text, utc=True, format="ISO8601", errors="coerce")
        except (OverflowError, ValueError):
            nem = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]")
        junk = nem.isna() & raw["nemTime"].notna()
        if junk.any():
            n = raw.index[_first_bad(junk)]
            raise PriceDataError(provider, "malformed_payload", f"item {n}: nemTime {shown(items[n].get('nemTime'))} "
                                 "is not an ISO 8601 time")
        shift = (nem - end) / pd.Timedelta(hours=1)
        off = shift.notna() & (shift != 0)
        if off.any():
            n = raw.index[_first_bad(off)]
            h = float(shift.loc[n])
            problem = "timezone_off_by_an_hour" if abs(h) == 1 else "inconsistent_timestamps"
            raise PriceDataError(provider, problem, f"item {n}: nemTime {raw.loc[n, 'nemTime']} and endTime "
                                 f"{raw.loc[n, 'endTime']} differ by {h:+g} h")
    adv = raw["advancedPrice"] if "advancedPrice" in raw else pd.Series(None, index=raw.index, dtype=object)
    adv = pd.DataFrame([a if isinstance(a, dict) else {} for a in adv], index=raw.index)

    def col(frame: pd.DataFrame, name: str) -> pd.Series:
        return pd.to_numeric(frame[name], errors="coerce") if name in frame else pd.Series(np.nan, index=frame.index)

    spike = raw["spikeStatus"].fillna("none") if "spikeStatus" in raw else "none"
    return pd.DataFrame({
        "channel": raw["channelType"],
        "kind": raw["type"].map(INTERVAL_TYPES).fillna("unknown"),
        "duration": duration,
        "interval_start": end - pd.to_timedelta(duration, unit="min"),
        "per_kwh": per_kwh,
        "predicted": col(adv, "predicted"),
        "low": col(adv, "low"),
        "high": col(adv, "high"),
        "spot": col(raw, "spotPerKwh"),
        "spike": spike,
        "descriptor": raw.get("descriptor"),
        "renewables": col(raw, "renewables"),
    }).reset_index(drop=True)


def _to_grid(df: pd.DataFrame) -> pd.DataFrame:
    """Put mixed 5/30-min responses on the 5-min grid; a 5-min interval beats a 30-min one covering it."""
    durations = set(df["duration"].unique())
    if len(durations) == 1:
        return df
    finest = min(durations)
    parts = []
    for _, row in df.iterrows():
        reps = int(row["duration"] // finest)
        for k in range(reps):
            r = row.copy()
            r["interval_start"] = row["interval_start"] + pd.Timedelta(minutes=finest * k)
            parts.append(r)
    out = pd.DataFrame(parts)
    out = out.sort_values("duration", kind="stable").drop_duplicates(["channel", "interval_start"], keep="first")
    return out


def parse_amber_prices(items: list[Any], fetched_at: pd.Timestamp | None = None, source: str = PROVIDER,
                       provider: str = PROVIDER, later_wins: bool = False) -> pd.DataFrame:
    """A raw Amber ``/prices`` (or ``/prices/current``) JSON array -> the normalised price frame.

    Columns beyond the schema: ``controlled_load_price`` ($/kWh, NaN without that channel),
    ``spot_price`` ($/kWh inc GST, Amber's spotPerKwh), ``descriptor``, ``renewables`` (%), ``provenance``
    (actual | current | forecast). ``later_wins``: several responses concatenated (saved day files) may
    repeat an interval; the later one is kept instead of refusing the payload.
    """
    rows = _to_grid(_interval_rows(items, provider))
    if later_wins:
        rows = rows.drop_duplicates(["channel", "interval_start"], keep="last")
    check_price_unit(rows["per_kwh"], "c/kWh", provider, "perKwh values")
    forecastish = rows["kind"].isin(("forecast", "current")) & rows["predicted"].notna()
    rows["price"] = np.where(forecastish, rows["predicted"], rows["per_kwh"]) / 100.0
    for c in ("low", "high", "spot"):
        rows[c] = rows[c] / 100.0
    by = {ch: drop_repeats(g.set_index("interval_start"), provider, ("price", "low", "high"), f"{ch}: ")
          for ch, g in rows.groupby("channel")}
    if "general" not in by:
        raise PriceDataError(provider, "missing_channel", "no 'general' (import) channel in the response")
    gen = by["general"].sort_index()
    df = pd.DataFrame(index=pd.DatetimeIndex(gen.index, name="interval_start"))
    df["import_price"] = gen["price"]
    if "feedIn" in by:
        feed = by["feedIn"]["price"].reindex(df.index)
        if feed.isna().any():
            raise PriceDataError(provider, "missing_intervals",
                                 f"feedIn lacks {int(feed.isna().sum())} interval(s) that general has")
        df["export_price"] = -feed  # Amber: negative feed-in = the owner is paid
    else:
        df["export_price"] = 0.0  # import-only plan: exporting earns nothing
    df["spike_status"] = gen["spike"].where(gen["spike"].isin(("none", "potential", "spike")), "none")
    df["is_forecast"] = gen["kind"].eq("forecast")
    df["price_low"] = gen["low"]
    df["price_high"] = gen["high"]
    df["controlled_load_price"] = by["controlledLoad"]["price"].reindex(df.index) if "controlledLoad" in by else np.nan
    df["spot_price"] = gen["spot"]
    df["descriptor"] = gen["descriptor"].astype("string")
    df["renewables"] = gen["renewables"]
    df["provenance"] = gen["kind"]
    if df.index.duplicated().any() or not df.index.is_monotonic_increasing:
        raise PriceDataError(provider, "out_of_order_intervals", "intervals are not strictly increasing")
    return price_frame(df, provider, source, fetched_at)


def read_amber_file(path: str | Path, source: str = "amber_file") -> pd.DataFrame:
    """``--file``: a saved raw Amber prices JSON array."""
    f = Path(path)
    if not f.exists():
        raise PriceDataError(PROVIDER, "file_not_found", str(f))
    items = parse_json_bytes(f.read_bytes(), PROVIDER, f.name)
    return parse_amber_prices(items, fetched_at=pd.Timestamp("1970-01-01", tz="UTC"), source=source)


def read_amber_files(paths: list[Path], source: str = "amber_file") -> pd.DataFrame:
    """Several saved responses (e.g. one file per NEM day) parsed as one payload: one vectorised pass."""
    items: list[Any] = []
    for f in paths:
        body = parse_json_bytes(Path(f).read_bytes(), PROVIDER, Path(f).name)
        if not isinstance(body, list):
            raise PriceDataError(PROVIDER, "malformed_payload", f"{Path(f).name}: expected a JSON array")
        items.extend(body)
    return parse_amber_prices(items, fetched_at=pd.Timestamp("1970-01-01", tz="UTC"), source=source, later_wins=True)


def discover_sites(client: httpx.Client, token_env: str | None, base: str | None = None,
                   policy: RetryPolicy | None = None) -> list[dict[str, Any]]:
    """``GET /sites``: the account's sites with their NMI, network, status, channels and NEM region."""
    sites = get_json(client, PROVIDER, f"{base or base_url('amber')}/sites", headers=bearer(token_env, PROVIDER),
                     policy=policy)
    if not isinstance(sites, list):
        raise PriceDataError(PROVIDER, "malformed_payload", "/sites did not return a JSON array")
    out = []
    for s in sites:
        if not isinstance(s, dict) or "id" not in s:
            raise PriceDataError(PROVIDER, "malformed_payload", "a /sites entry has no 'id'")
        out.append({**s, "region": NETWORK_REGIONS.get(str(s.get("network", "")))})
    return out


def pick_site_id(sites: list[dict[str, Any]]) -> str:
    """The one active site, or an error listing the choices (the owner must set ``site_id``)."""
    active = [s for s in sites if str(s.get("status", "active")).lower() == "active"] or sites
    if len(active) == 1:
        return str(active[0]["id"])
    ids = ", ".join(str(s["id"]) for s in active) or "none"
    raise PriceDataError(PROVIDER, "site_ambiguous", f"set provider.site_id to one of: {ids}")


def fetch_amber(site: SiteConfig, now: pd.Timestamp, horizon_hours: float = 48, *,
                client: httpx.Client | None = None, policy: RetryPolicy | None = None,
                history_hours: float = 1.0, resolution: int | None = None, base: str | None = None,
                **_: object) -> pd.DataFrame:
    """The registry fetcher for ``kind: amber``: ``/sites/{id}/prices/current`` around ``now``.

    ``base``: the API root when the site's ``base_url`` belongs to another service (Flow Power's NEMWEB)."""
    prov = site.provider
    policy = (policy or RetryPolicy()).within(prov.fetch_deadline_s)
    res = int(resolution or prov.resolution)
    base = base or base_url("amber", prov.base_url)
    headers = bearer(prov.token_env, PROVIDER)
    own = client is None
    client = client or make_client(timeout_s=prov.request_timeout_s)
    try:
        site_id = prov.site_id or pick_site_id(discover_sites(client, prov.token_env, base, policy))
        params = {
            "next": min(MAX_INTERVALS, math.ceil(horizon_hours * 60 / res)),
            "previous": min(MAX_INTERVALS, math.ceil(history_hours * 60 / res)),
            "resolution": res,
        }
        items = get_json(client, PROVIDER, f"{base}/sites/{site_id}/prices/current", params=params,
                         headers=headers, policy=policy)
    finally:
        if own:
            client.close()
    frame = parse_amber_prices(items, fetched_at=pd.Timestamp(now).tz_convert("UTC"))
    frame.attrs["amber_site_id"] = site_id
    return frame
