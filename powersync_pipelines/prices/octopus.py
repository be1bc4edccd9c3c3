"""Octopus Energy (UK, public API, no token): Agile, Go, Flux and Tracker import plus Agile Outgoing / Flux export.

Values are p/kWh inc VAT -> £/kWh; ``valid_from``/``valid_to`` are UTC interval bounds (``valid_to`` null =
open-ended). Agile's next-day prices appear ~16:00 UK time, so a 48-h horizon is short before then; the rest
is filled from a seasonal profile (median of the same UK half-hour over the previous week), flagged
``is_forecast`` with ``provenance = seasonal_profile`` so nothing pretends to be a published price.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from ..config import SiteConfig
from ..schemas import finalize_price_frame
from .errors import PriceDataError
from .http import RetryPolicy, base_url, get_json, make_client, parse_json_bytes
from .quality import check_price_unit

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


def rates_frame(results: list[dict[str, Any]], start: pd.Timestamp, end: pd.Timestamp,
                what: str = "unit rates") -> pd.Series:
    """``results`` -> £/kWh on the 30-min grid over ``[start, end)``; block rates (Go, Tracker) are expanded.

    Where several entries cover a slot (direct debit and not), the direct-debit / unspecified one wins.
    """
    if not results:
        return pd.Series(dtype=float, index=pd.DatetimeIndex([], tz="UTC", name="interval_start"))
    rows = []
    for n, r in enumerate(results):
        try:
            value = float(r["value_inc_vat"])
            vf = pd.Timestamp(r["valid_from"])
            vt = pd.Timestamp(r["valid_to"]) if r.get("valid_to") else None
        except (KeyError, TypeError, ValueError) as exc:
            raise PriceDataError(PROVIDER, "malformed_payload", f"{what} item {n}: {exc!r}") from None
        if vf.tzinfo is None:
            raise PriceDataError(PROVIDER, "naive_timestamps", f"{what} item {n}: valid_from has no offset")
        pm = r.get("payment_method")
        rows.append((vf.tz_convert("UTC"), vt.tz_convert("UTC") if vt is not None else None, value,
                     0 if pm in (None, "DIRECT_DEBIT") else 1))
    check_price_unit(np.array([v for _, _, v, _ in rows]), "p/kWh", PROVIDER, what)
    grid = pd.date_range(start.floor(SLOT), end - pd.Timedelta(1, "ns"), freq=SLOT, tz="UTC", name="interval_start")
    values = pd.Series(np.nan, index=grid)
    prio = pd.Series(np.inf, index=grid)
    for vf, vt, value, p in rows:
        hi = vt if vt is not None else end
        mask = (grid >= vf) & (grid < hi) & (p < prio.to_numpy())
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
    return finalize_price_frame(df, source=source, fetched_at=fetched_at)


def fetch_octopus(site: SiteConfig, now: pd.Timestamp, horizon_hours: float = 48, *,
                  client: httpx.Client | None = None, policy: RetryPolicy | None = None,
                  history_hours: float = 1.0, **_: object) -> pd.DataFrame:
    """The registry fetcher for ``kind: octopus``."""
    prov = site.provider
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
    first = f.read_text(errors="replace").split("\n", 1)[0]
    has_header = not re.match(r"^\d{4}-\d{2}-\d{2}", first.strip())
    df = pd.read_csv(f, header=0 if has_header else None, skipinitialspace=True)
    ts = pd.to_datetime(df.iloc[:, 0].astype(str).str.strip(), utc=True, format="ISO8601")
    price = pd.to_numeric(df.iloc[:, -1], errors="coerce")
    if price.isna().any():
        raise PriceDataError(PROVIDER, "nan_prices", f"{f.name}: {int(price.isna().sum())} non-numeric price(s)")
    check_price_unit(price, "p/kWh", PROVIDER, f"{f.name} prices")
    s = pd.Series(price.to_numpy() / 100.0, index=pd.DatetimeIndex(ts, name="interval_start"))
    if s.index.duplicated().any():
        raise PriceDataError(PROVIDER, "duplicated_intervals", f"{f.name}: {int(s.index.duplicated().sum())} duplicated")
    return s.sort_index()


def read_rates_json(path: str | Path) -> pd.Series:
    """A saved ``standard-unit-rates`` JSON page -> £/kWh by UTC interval start (block rates expanded)."""
    f = Path(path)
    if not f.exists():
        raise PriceDataError(PROVIDER, "file_not_found", str(f))
    body = parse_json_bytes(f.read_bytes(), PROVIDER, f.name)
    results = body.get("results") if isinstance(body, dict) else body
    if not isinstance(results, list) or not results:
        raise PriceDataError(PROVIDER, "malformed_payload", f"{f.name}: no 'results' list")
    starts = [pd.Timestamp(r["valid_from"]).tz_convert("UTC") for r in results]
    ends = [pd.Timestamp(r["valid_to"]).tz_convert("UTC") for r in results if r.get("valid_to")]
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
    return finalize_price_frame(df, source=source, fetched_at=pd.Timestamp("1970-01-01", tz="UTC"))
