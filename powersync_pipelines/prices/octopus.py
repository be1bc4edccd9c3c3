"""Octopus Energy (UK, public API, no token): Agile, Go, Flux and Tracker import plus Agile Outgoing / Flux export.

Values are p/kWh inc VAT -> £/kWh; ``valid_from``/``valid_to`` are UTC interval bounds (``valid_to`` null =
open-ended). Agile's next-day prices appear ~16:00 UK time, so a 48-h horizon is short before then; the rest
is filled from a seasonal profile (median of the same UK half-hour over the previous week), flagged
``is_forecast`` with ``provenance = seasonal_profile`` so nothing pretends to be a published price.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from ..config import SiteConfig
from .errors import PriceDataError
from .http import RetryPolicy, base_url, get_json, make_client, parse_json_bytes
from .quality import check_complete_text, check_price_unit, clean_intervals, price_frame, shown

PROVIDER = "octopus"
UK_TZ = "Europe/London"
SLOT = pd.Timedelta(minutes=30)
GSP_REGIONS = tuple("ABCDEFGHJKLMNP")
PAGE_SIZE = 1500
PROFILE_DAYS = 7
# Product families -> code prefix (codes are discovered from /products/, newest available wins).
FAMILIES = {
    "agile": ("AGILE-", "IMPORT"),
    "go": ("GO-", "IMPORT"),
    "intelligent_go": ("INTELLI-VAR-", "IMPORT"),
    "flux": ("FLUX-IMPORT-", "IMPORT"),
    "intelligent_flux": ("INTELLI-FLUX-IMPORT-", "IMPORT"),
    "tracker": ("SILVER-", "IMPORT"),
    "agile_outgoing": ("AGILE-OUTGOING-", "EXPORT"),
    "outgoing": ("OUTGOING-VAR-", "EXPORT"),
    "flux_export": ("FLUX-EXPORT-", "EXPORT"),
    "intelligent_flux_export": ("INTELLI-FLUX-EXPORT-", "EXPORT"),
}
_CODE = re.compile(r"^[A-Z0-9]+(-[A-Z0-9]+)*-\d{2}-\d{2}-\d{2}$")


def tariff_code(product: str, gsp: str) -> str:
    """Single-register electricity tariff code, e.g. ``E-1R-AGILE-24-10-01-C``."""
    if gsp not in GSP_REGIONS:
        raise PriceDataError(PROVIDER, "unknown_gsp", f"{gsp!r} is not a GSP region ({', '.join(GSP_REGIONS)})")
    return f"E-1R-{product}-{gsp}"


def _pages(client: httpx.Client, url: str, params: dict[str, Any] | None, policy: RetryPolicy | None,
           max_pages: int = 50) -> list[dict[str, Any]]:
    """All ``results`` across pages, following ``next`` links."""
    out: list[dict[str, Any]] = []
    next_url: str | None = url
    first = True
    for _ in range(max_pages):
        if not next_url:
            return out
        body = get_json(client, PROVIDER, next_url, params=params if first else None, policy=policy)
        first = False
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise PriceDataError(PROVIDER, "malformed_payload", f"{url}: expected an object with a 'results' list")
        out.extend(body["results"])
        next_url = body.get("next")
    raise PriceDataError(PROVIDER, "too_many_pages", f"{url}: more than {max_pages} pages")


def resolve_product(client: httpx.Client, base: str, product: str, now: pd.Timestamp,
                    policy: RetryPolicy | None = None) -> str:
    """A product code as configured, or the newest available product of a family (``agile``, ``flux_export``)."""
    p = product.strip()
    if _CODE.match(p.upper()):
        return p.upper()
    fam = FAMILIES.get(p.lower())
    if fam is None:
        raise PriceDataError(PROVIDER, "unknown_product",
                             f"{product!r}: give a product code (AGILE-24-10-01) or one of {', '.join(FAMILIES)}")
    prefix, direction = fam
    products = _pages(client, f"{base}/products/", {"brand": "OCTOPUS_ENERGY", "is_business": "false"}, policy)
    candidates = []
    for item in products:
        code = str(item.get("code", ""))
        if not code.startswith(prefix) or str(item.get("direction", direction)).upper() != direction:
            continue
        if prefix == "AGILE-" and "OUTGOING" in code:
            continue
        start = pd.Timestamp(item["available_from"]) if item.get("available_from") else pd.Timestamp.min.tz_localize("UTC")
        end = pd.Timestamp(item["available_to"]) if item.get("available_to") else None
        if end is not None and end <= now:
            continue
        candidates.append((start, code))
    if not candidates:
        raise PriceDataError(PROVIDER, "unknown_product", f"no available {product} product in /products/")
    return max(candidates)[1]


def resolve_tariff(client: httpx.Client, base: str, product_code: str, gsp: str,
                   policy: RetryPolicy | None = None) -> str:
    """The tariff code for ``gsp`` as the product's own page lists it (falls back to the E-1R pattern)."""
    expected = tariff_code(product_code, gsp)
    detail = get_json(client, PROVIDER, f"{base}/products/{product_code}/", policy=policy)
    regions = detail.get("single_register_electricity_tariffs") if isinstance(detail, dict) else None
    if not isinstance(regions, dict):
        raise PriceDataError(PROVIDER, "malformed_payload", f"product {product_code}: no single-register tariffs")
    entry = regions.get(f"_{gsp}")
    if not entry:
        raise PriceDataError(PROVIDER, "unknown_gsp", f"product {product_code} has no tariff for GSP region {gsp}")
    for pm in ("direct_debit_monthly", "varying"):
        if isinstance(entry.get(pm), dict) and entry[pm].get("code"):
            return str(entry[pm]["code"])
    return expected


def _instant(value: Any, n: int, field: str, what: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise PriceDataError(PROVIDER, "malformed_payload", f"{what} item {n}: {field} {value!r} is not a time") from None
    if ts is pd.NaT or pd.isna(ts):
        raise PriceDataError(PROVIDER, "malformed_payload", f"{what} item {n}: {field} is empty")
    if ts.tzinfo is None:
        raise PriceDataError(PROVIDER, "naive_timestamps", f"{what} item {n}: {field} {value!r} has no UTC offset")
    return ts.tz_convert("UTC")


def _rate(n: int, r: Any, what: str) -> tuple[pd.Timestamp, pd.Timestamp | None, float, int]:
    """One ``results`` entry checked: (valid_from, valid_to or None, p/kWh, payment-method priority)."""
    if not isinstance(r, dict):
        raise PriceDataError(PROVIDER, "malformed_payload", f"{what} item {n} is not an object")
    for key in ("valid_from", "value_inc_vat"):
        if r.get(key) is None:
            raise PriceDataError(PROVIDER, "malformed_payload", f"{what} item {n} lacks '{key}'")
    raw = r["value_inc_vat"]
    try:
        value = float(raw) if not isinstance(raw, bool) else float("nan")
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value):
        raise PriceDataError(PROVIDER, "nan_prices",
                             f"{what} item {n} ({r.get('valid_from')}): value_inc_vat {shown(raw)} is not a finite number")
    vf = _instant(r["valid_from"], n, "valid_from", what)
    vt = _instant(r["valid_to"], n, "valid_to", what) if r.get("valid_to") is not None else None
    if vt is not None and vt <= vf:
        raise PriceDataError(PROVIDER, "malformed_payload", f"{what} item {n}: valid_to {r['valid_to']} is not after "
                             f"valid_from {r['valid_from']}")
    pm = r.get("payment_method")
    return vf, vt, value, 0 if pm in (None, "DIRECT_DEBIT") else 1


def rates_frame(results: list[dict[str, Any]], start: pd.Timestamp, end: pd.Timestamp,
                what: str = "unit rates") -> pd.Series:
    """``results`` -> £/kWh on the 30-min grid over ``[start, end)``; block rates (Go, Tracker) are expanded.

    Where several entries cover a slot (direct debit and not), the direct-debit / unspecified one wins.
    """
    if not results:
        return pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC", name="interval_start"))
    rows = [_rate(n, r, what) for n, r in enumerate(results)]
    check_price_unit(np.array([v for _, _, v, _ in rows]), "p/kWh", PROVIDER, what)
    grid = pd.date_range(start.floor(SLOT), end - pd.Timedelta(1, "ns"), freq=SLOT, tz="UTC", name="interval_start")
    values = pd.Series(np.nan, index=grid)
    prio = pd.Series(np.inf, index=grid)
    for n, (vf, vt, value, p) in enumerate(rows):
        hi = vt if vt is not None else end
        inside = (grid >= vf) & (grid < hi)
        clash = inside & (prio.to_numpy() == p) & ~np.isclose(values.to_numpy(), value / 100.0)
        if clash.any():
            slot = grid[np.flatnonzero(clash)[0]]
            raise PriceDataError(PROVIDER, "conflicting_duplicates",
                                 f"{what}: slot {slot.isoformat()} has two rates, {values[slot] * 100:g} and "
                                 f"{value:g} p/kWh (item {n})")
        mask = inside & (p < prio.to_numpy())
        values[mask] = value / 100.0
        prio[mask] = p
    return values.dropna()


def seasonal_fill(series: pd.Series, end: pd.Timestamp, days: int = PROFILE_DAYS) -> tuple[pd.Series, pd.Series]:
    """Extend ``series`` to ``end`` with the median of the same UK half-hour over the last ``days`` days.

    Returns (values, is_filled). Local (UK) half-hours, so a profile learnt in GMT lines up in BST.
    """
    if series.empty:
        raise PriceDataError(PROVIDER, "no_prices", "nothing published to build a profile from")
    last = series.index.max()
    hist = series[series.index > last - pd.Timedelta(days=days)]
    local = hist.index.tz_convert(UK_TZ)
    profile = hist.groupby(local.hour * 2 + local.minute // 30).median()
    if last + SLOT >= end:
        return series, pd.Series(False, index=series.index)
    future = pd.date_range(last + SLOT, end - SLOT, freq=SLOT, tz="UTC", name="interval_start")
    if future.empty:
        return series, pd.Series(False, index=series.index)
    fl = future.tz_convert(UK_TZ)
    slots = fl.hour * 2 + fl.minute // 30
    filled = pd.Series(profile.reindex(slots).to_numpy(), index=future)
    filled = filled.fillna(float(hist.median()))
    values = pd.concat([series, filled])
    return values, pd.Series(values.index > last, index=values.index)


def fetch_rates(client: httpx.Client, base: str, product: str, tariff: str, start: pd.Timestamp,
                end: pd.Timestamp, policy: RetryPolicy | None = None) -> list[dict[str, Any]]:
    params = {
        "period_from": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "period_to": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "page_size": PAGE_SIZE,
    }
    url = f"{base}/products/{product}/electricity-tariffs/{tariff}/standard-unit-rates/"
    return _pages(client, url, params, policy)


def build_frame(imp: pd.Series, exp: pd.Series | None, end: pd.Timestamp,
                fetched_at: pd.Timestamp, source: str = PROVIDER) -> pd.DataFrame:
    """Import (+ export) rates -> the normalised frame; gaps after the last published slot profile-filled."""
    imp_v, imp_f = seasonal_fill(imp, end)
    df = pd.DataFrame({"import_price": imp_v})
    filled = imp_f.copy()
    if exp is not None and not exp.empty:
        exp_v, exp_f = seasonal_fill(exp, end)
        df["export_price"] = exp_v.reindex(df.index)
        filled = filled | exp_f.reindex(df.index, fill_value=True)
    else:
        df["export_price"] = 0.0  # no export tariff configured: exporting earns nothing
    if df["export_price"].isna().any():
        raise PriceDataError(PROVIDER, "missing_intervals", "export rates do not cover the import rates' slots")
    df["is_forecast"] = filled.reindex(df.index).to_numpy(dtype=bool)
    df["provenance"] = np.where(df["is_forecast"], "seasonal_profile", "published")
    df.index.name = "interval_start"
    return price_frame(df, PROVIDER, source, fetched_at)


def fetch_octopus(site: SiteConfig, now: pd.Timestamp, horizon_hours: float = 48, *,
                  client: httpx.Client | None = None, policy: RetryPolicy | None = None,
                  history_hours: float = 1.0, **_: object) -> pd.DataFrame:
    """The registry fetcher for ``kind: octopus``."""
    prov = site.provider
    policy = (policy or RetryPolicy()).within(prov.fetch_deadline_s)
    base = base_url("octopus", prov.base_url)
    now = pd.Timestamp(now).tz_convert("UTC")
    start = now.floor(SLOT) - pd.Timedelta(days=PROFILE_DAYS)
    end = now.floor(SLOT) + pd.Timedelta(hours=horizon_hours)
    own = client is None
    client = client or make_client(timeout_s=prov.request_timeout_s)
    try:
        product = resolve_product(client, base, prov.product or "agile", now, policy)
        imp_code = resolve_tariff(client, base, product, prov.gsp or "", policy)
        imp = rates_frame(fetch_rates(client, base, product, imp_code, start, end, policy), start, end, "import rates")
        exp = None
        if prov.export_product:
            eprod = resolve_product(client, base, prov.export_product, now, policy)
            ecode = resolve_tariff(client, base, eprod, prov.gsp or "", policy)
            exp = rates_frame(fetch_rates(client, base, eprod, ecode, start, end, policy), start, end, "export rates")
    finally:
        if own:
            client.close()
    frame = build_frame(imp, exp, end, fetched_at=now)
    lo = now.floor(SLOT) - pd.Timedelta(hours=history_hours)
    out = frame.loc[frame.index >= lo]
    out.attrs.update(frame.attrs, product=product, tariff_code=imp_code)
    return out


# -- saved files -------------------------------------------------------------------------------------------
def read_rates_csv(path: str | Path) -> pd.Series:
    """Octopus unit rates saved as CSV (energy-stats.uk exports with or without header, or ``timestamp,price``)
    -> £/kWh by UTC interval start. The first column is always the UTC start, the last the p/kWh price."""
    f = Path(path)
    if not f.exists():
        raise PriceDataError(PROVIDER, "file_not_found", str(f))
    text = f.read_text(errors="replace")
    if not text.strip():
        raise PriceDataError(PROVIDER, "empty_file", f"{f.name} is empty")
    check_complete_text(text, f.name, PROVIDER)
    first = text.split("\n", 1)[0]
    has_header = not re.match(r"^\d{4}-\d{2}-\d{2}", first.strip())
    try:
        df = pd.read_csv(io.StringIO(text), header=0 if has_header else None, skipinitialspace=True, dtype=str)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        raise PriceDataError(PROVIDER, "unreadable_file", f"{f.name}: {str(exc).splitlines()[0]}") from None
    if df.empty or df.shape[1] < 2:
        raise PriceDataError(PROVIDER, "malformed_payload", f"{f.name}: expected a time column and a price column")
    stamps = df.iloc[:, 0].astype(str).str.strip()
    naive = ~stamps.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True)
    if naive.any():
        n = int(np.flatnonzero(naive.to_numpy())[0])
        raise PriceDataError(PROVIDER, "naive_timestamps",
                             f"{f.name}: data row {n + 1} time {stamps.iloc[n]!r} has no UTC offset (or is cut off)")
    ts = pd.to_datetime(stamps, utc=True, format="ISO8601", errors="coerce")
    if ts.isna().any():
        n = int(np.flatnonzero(ts.isna().to_numpy())[0])
        raise PriceDataError(PROVIDER, "malformed_payload", f"{f.name}: data row {n + 1} time {stamps.iloc[n]!r} "
                             "is not an ISO 8601 time")
    price = pd.to_numeric(df.iloc[:, -1], errors="coerce")
    s = pd.DataFrame({"import_price": price.to_numpy() / 100.0}, index=pd.DatetimeIndex(ts, name="interval_start"))
    s = clean_intervals(s, PROVIDER, ("import_price",), f"{f.name}: ")
    check_price_unit(s["import_price"] * 100.0, "p/kWh", PROVIDER, f"{f.name} prices")
    return s["import_price"]


def read_rates_json(path: str | Path) -> pd.Series:
    """A saved ``standard-unit-rates`` JSON page -> £/kWh by UTC interval start (block rates expanded)."""
    f = Path(path)
    if not f.exists():
        raise PriceDataError(PROVIDER, "file_not_found", str(f))
    body = parse_json_bytes(f.read_bytes(), PROVIDER, f.name)
    results = body.get("results") if isinstance(body, dict) else body
    if not isinstance(results, list) or not results:
        raise PriceDataError(PROVIDER, "malformed_payload", f"{f.name}: no 'results' list")
    rows = [_rate(n, r, f.name) for n, r in enumerate(results)]
    starts = [vf for vf, _, _, _ in rows]
    ends = [vt for _, vt, _, _ in rows if vt is not None]
    end = max(ends) if ends else max(starts) + pd.Timedelta(days=1)
    return rates_frame(results, min(starts), end, f.name)


def read_octopus_file(path: str | Path, export_path: str | Path | None = None,
                      source: str = "octopus_file") -> pd.DataFrame:
    """``--file``: saved import rates (JSON page or CSV), optionally export rates; nothing is profile-filled."""
    def read(p: str | Path) -> pd.Series:
        return read_rates_json(p) if str(p).lower().endswith(".json") else read_rates_csv(p)

    imp = read(path)
    df = pd.DataFrame({"import_price": imp})
    if export_path is not None:
        df["export_price"] = read(export_path).reindex(df.index)
        df = df.dropna(subset=["export_price"])
        if df.empty:
            raise PriceDataError(PROVIDER, "no_overlap", "import and export files share no intervals")
    else:
        df["export_price"] = 0.0
    df["provenance"] = "published"
    return price_frame(df, PROVIDER, source, pd.Timestamp("1970-01-01", tz="UTC"))
