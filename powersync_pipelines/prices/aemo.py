"""AEMO / NEMWEB wholesale prices: the current dispatch price plus 5-min and 30-min predispatch forecasts.

``wholesale_rrp`` returns the raw regional reference price ($/MWh ex-GST, as published) on a UTC 5-minute
grid; ``fetch_aemo`` turns it into the normalised frame with the site's retail mapping. Flow Power and
Globird build on ``wholesale_rrp`` too, so the NEMWEB handling lives in one place.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from ..config import RetailMapping, SiteConfig
from . import nemweb
from .errors import PriceDataError
from .history import PriceFileError, read_aemo_price_and_demand, read_normalized_csv, retail_prices
from .http import RetryPolicy, base_url, make_client, request
from .quality import check_complete_text, check_price_unit, clean_intervals, price_frame

PROVIDER = "aemo"
# DISPATCHIS appears ~20 s after its interval starts; older than this and NEMWEB (or a mirror) is stuck.
MAX_DISPATCH_AGE = pd.Timedelta(minutes=15)
_OFFSET = re.compile(r"([+-]\d{2}:?\d{2}|Z)$")


def fetch_report(client: httpx.Client, root: str, kind: str, policy: RetryPolicy | None = None,
                 provider: str = PROVIDER) -> tuple[str, dict[str, pd.DataFrame]]:
    """Latest report of ``kind`` (dispatch | p5min | predispatch): its file name and parsed tables."""
    folder = f"{root}{nemweb.FOLDERS[kind]}"
    listing = request(client, provider, "GET", folder, policy=policy)
    files = nemweb.parse_listing(listing.text, kind, provider)
    latest = files[-1]
    url = str(httpx.URL(folder).join(latest.href))
    resp = request(client, provider, "GET", url, policy=policy)
    text = nemweb.unzip_report(resp.content, latest.name, provider)
    return latest.name, nemweb.parse_cid(text, latest.name, provider)


def expand_to_5min(df: pd.DataFrame, minutes: int = 30) -> pd.DataFrame:
    """Repeat each ``minutes``-long row on the 5-minute grid (the value holds for the whole period)."""
    if df.empty or minutes == 5:
        return df
    reps = minutes // 5
    idx = pd.DatetimeIndex(np.repeat(df.index.asi8, reps) + np.tile(np.arange(reps) * 300_000_000_000, len(df)),
                           tz="UTC", name=df.index.name)
    return pd.DataFrame(np.repeat(df.to_numpy(), reps, axis=0), index=idx, columns=df.columns).astype(df.dtypes)


def combine_stages(dispatch: pd.DataFrame, p5min: pd.DataFrame | None, predispatch: pd.DataFrame | None) -> pd.DataFrame:
    """Actual dispatch first, then each forecast only where nothing more recent covers the interval."""
    parts = [dispatch]
    last = dispatch.index.max()
    for extra, minutes in ((p5min, 5), (predispatch, 30)):
        if extra is None or extra.empty:
            continue
        grid = expand_to_5min(extra, minutes)
        grid = grid[grid.index > last]
        if not grid.empty:
            parts.append(grid)
            last = grid.index.max()
    out = pd.concat(parts).sort_index()
    out["is_forecast"] = out["provenance"] != "dispatch"
    return out


def wholesale_rrp(region: str, now: pd.Timestamp, horizon_hours: float = 48, *, client: httpx.Client | None = None,
                  base: str | None = None, policy: RetryPolicy | None = None, history_hours: float = 0.0,
                  provider: str = PROVIDER, timeout_s: float = 20.0,
                  deadline_s: float | None = None) -> pd.DataFrame:
    """``rrp`` ($/MWh), ``provenance`` (dispatch | p5min | predispatch) and ``is_forecast`` on a 5-min grid.

    Predispatch reaches the end of the next trading day (~04:00 NEM time), so the horizon is whatever
    AEMO has published; the frame is never padded with invented prices here.
    """
    root = base or base_url("aemo")
    policy = (policy or RetryPolicy()).within(deadline_s)
    own = client is None
    client = client or make_client(timeout_s=timeout_s)
    try:
        d_name, d_tables = fetch_report(client, root, "dispatch", policy, provider)
        p_name, p_tables = fetch_report(client, root, "p5min", policy, provider)
        q_name, q_tables = fetch_report(client, root, "predispatch", policy, provider)
    finally:
        if own:
            client.close()
    dispatch = nemweb.dispatch_prices(d_tables, region, d_name, provider)
    now = pd.Timestamp(now).tz_convert("UTC")
    age = now - (dispatch.index.max() + pd.Timedelta(minutes=5))
    if age > MAX_DISPATCH_AGE:
        raise PriceDataError(provider, "stale_report",
                             f"latest dispatch file {d_name} is {age.total_seconds() / 60:.0f} min old")
    raw = combine_stages(
        dispatch,
        nemweb.p5min_prices(p_tables, region, p_name, provider),
        nemweb.predispatch_prices(q_tables, region, q_name, provider),
    )
    lo = now.floor("5min") - pd.Timedelta(hours=history_hours)
    hi = now + pd.Timedelta(hours=horizon_hours)
    # The dispatch interval is the current one; keep it even when history_hours is 0.
    lo = min(lo, raw.index[0])
    return raw.loc[(raw.index >= lo) & (raw.index < hi)]


def spike_status(rrp: pd.Series, is_forecast: pd.Series, threshold_per_mwh: float) -> np.ndarray:
    """'spike' for an actual price at or over the threshold, 'potential' for a forecast one."""
    over = rrp.to_numpy(dtype=float) >= threshold_per_mwh
    fc = is_forecast.to_numpy(dtype=bool)
    return np.where(over & ~fc, "spike", np.where(over & fc, "potential", "none"))


def frame_from_rrp(raw: pd.DataFrame, retail: RetailMapping, threshold_per_mwh: float, source: str = PROVIDER,
                   fetched_at: pd.Timestamp | None = None) -> pd.DataFrame:
    """Wholesale ``rrp`` -> the normalised frame with the site's retail mapping (``rrp`` kept as published)."""
    raw = clean_intervals(raw, source, ("rrp",))
    check_price_unit(raw["rrp"], "$/MWh", source, "RRP values")
    imp, exp = retail_prices(raw["rrp"], retail)
    return retail_frame_from_wholesale(raw, imp, exp, threshold_per_mwh, source, fetched_at,
                                       carry=("provenance", "price_status"))


def fetch_aemo(site: SiteConfig, now: pd.Timestamp, horizon_hours: float = 48, *,
               client: httpx.Client | None = None, policy: RetryPolicy | None = None,
               history_hours: float = 0.0, **_: object) -> pd.DataFrame:
    """The registry fetcher for ``kind: aemo``."""
    prov = site.provider
    raw = wholesale_rrp(prov.region or "", now, horizon_hours, client=client, base=base_url("aemo", prov.base_url),
                        policy=policy, history_hours=history_hours, timeout_s=prov.request_timeout_s,
                        deadline_s=prov.fetch_deadline_s)
    return frame_from_rrp(raw, prov.retail, prov.spike_threshold_per_mwh, fetched_at=pd.Timestamp(now))


def fetch_dispatch_price(region: str, *, client: httpx.Client | None = None, base: str | None = None,
                         policy: RetryPolicy | None = None) -> tuple[str, pd.DataFrame]:
    """Just the latest DISPATCHIS price for ``region`` (the spike watch's one-file poll): (file name, rrp)."""
    own = client is None
    client = client or make_client(timeout_s=10.0)
    try:
        name, tables = fetch_report(client, base or base_url("aemo"), "dispatch", policy)
    finally:
        if own:
            client.close()
    return name, nemweb.dispatch_prices(tables, region, name)


# -- saved files -------------------------------------------------------------------------------------------
def _wall_clock_nem(values: pd.Series) -> tuple[pd.Series, list[str]]:
    """Strip an offset label from AEMO timestamps: the wall clock is NEM time whatever the label says.

    A public scraper relabelled DISPATCHPRICE SETTLEMENTDATEs ``+11:00`` while keeping the NEM (UTC+10)
    wall clock (PROVENANCE.md); trusting that label would shift every price by an hour.
    """
    s = values.astype(str).str.strip().str.strip('"')
    labels = sorted({m.group(1) for m in s.map(_OFFSET.search) if m is not None})
    warnings = [f"SETTLEMENTDATE labelled {lab}; used its wall clock as NEM time (UTC+10)"
                for lab in labels if lab not in ("+10:00", "+1000")]
    return s.str.replace(_OFFSET, "", regex=True).str.replace("T", " ").str.replace("-", "/"), warnings


def read_dispatchprice_csv(path: str | Path, region: str, provider: str = PROVIDER) -> pd.DataFrame:
    """A flat DISPATCHPRICE table (one header row, MMS column names) -> ``rrp`` by UTC interval start."""
    f = Path(path)
    try:
        text = f.read_text()
        check_complete_text(text, f.name, provider)
        df = pd.read_csv(io.StringIO(text), dtype=str)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise PriceDataError(provider, "unreadable_file", f"{f.name}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    missing = {"SETTLEMENTDATE", "REGIONID", "RRP"} - set(df.columns)
    if missing:
        raise PriceDataError(provider, "missing_columns", f"{f.name} lacks {sorted(missing)}")
    df = df[df["REGIONID"].str.strip() == region]
    if df.empty:
        raise PriceDataError(provider, "no_rows_for_region", f"{f.name} has no rows for {region}")
    if "INTERVENTION" in df:
        df = df[pd.to_numeric(df["INTERVENTION"], errors="coerce").fillna(0) == 0]
    wall, warnings = _wall_clock_nem(df["SETTLEMENTDATE"])
    idx = nemweb.nem_end_to_utc_start(wall, 5, provider)
    rrp = pd.to_numeric(df["RRP"], errors="coerce")
    if rrp.isna().any():
        raise PriceDataError(provider, "nan_prices", f"{f.name}: {int(rrp.isna().sum())} non-numeric RRP value(s)")
    out = pd.DataFrame({"rrp": rrp.to_numpy(float), "provenance": "dispatch", "is_forecast": False}, index=idx)
    if "PRICE_STATUS" in df:
        out["price_status"] = df["PRICE_STATUS"].str.strip().str.strip('"').to_numpy()
    out.index.name = "interval_start"
    out = clean_intervals(out, provider, ("rrp",), f"{f.name}: ")
    out.attrs["warnings"] = warnings
    return out


def sniff_aemo_file(path: Path) -> str:
    """report (NEMWEB zip/CSV) | price_and_demand | dispatchprice | normalized."""
    head = path.read_bytes()[:4096]
    if head.startswith(b"PK") or head.lstrip().startswith(b"C,"):
        return "report"
    first = head.decode("utf-8", "replace").splitlines()[0].upper() if head else ""
    cols = {c.strip().strip('"') for c in first.split(",")}
    if {"REGION", "SETTLEMENTDATE", "RRP"} <= cols:
        return "price_and_demand"
    if {"REGIONID", "SETTLEMENTDATE", "RRP"} <= cols:
        return "dispatchprice"
    if "INTERVAL_START" in cols:
        return "normalized"
    raise PriceDataError(PROVIDER, "unknown_file_format",
                         f"{path.name}: not a NEMWEB report, AEMO price-and-demand CSV, DISPATCHPRICE CSV or normalised CSV")


def retail_frame_from_wholesale(raw: pd.DataFrame, imp: np.ndarray, exp: np.ndarray, threshold_per_mwh: float,
                                source: str, fetched_at: pd.Timestamp | None,
                                carry: tuple[str, ...] = ("provenance",), **extra: np.ndarray) -> pd.DataFrame:
    """Prices derived from AEMO wholesale (AEMO itself, Flow Power, Globird): import/export beside the published
    ``rrp``, spike flags from the RRP, the wholesale frame's forecast flags and ``carry`` columns kept."""
    idx = pd.DatetimeIndex(raw.index)
    is_fc = raw["is_forecast"] if "is_forecast" in raw else pd.Series(False, index=idx)
    df = pd.DataFrame({
        "import_price": imp,
        "export_price": exp,
        "spike_status": spike_status(raw["rrp"], is_fc, threshold_per_mwh),
        "is_forecast": is_fc.to_numpy(dtype=bool),
        "rrp": raw["rrp"].to_numpy(dtype=float),
        **extra,
    }, index=idx)
    for col in carry:
        if col in raw:
            df[col] = raw[col].to_numpy()
    return price_frame(df, source, source, fetched_at)


def site_wholesale_rrp(site: SiteConfig, now: pd.Timestamp, horizon_hours: float, provider: str, *,
                       client: httpx.Client | None = None, policy: RetryPolicy | None = None,
                       history_hours: float = 0.0) -> pd.DataFrame:
    """``wholesale_rrp`` for a site's region, base URL and timeout (what AEMO-priced retailers fetch)."""
    prov = site.provider
    return wholesale_rrp(prov.region or "", now, horizon_hours, client=client, base=base_url("aemo", prov.base_url),
                         policy=policy, history_hours=history_hours, provider=provider,
                         timeout_s=prov.request_timeout_s, deadline_s=prov.fetch_deadline_s)


def read_wholesale_file(path: str | Path, region: str | None, provider: str = PROVIDER) -> pd.DataFrame:
    """Any AEMO price file -> ``rrp`` / ``provenance`` / ``is_forecast`` by UTC interval start."""
    f = Path(path)
    if not f.exists():
        raise PriceDataError(provider, "file_not_found", str(f))
    kind = sniff_aemo_file(f)
    if kind == "report":
        if not region:
            raise PriceDataError(provider, "region_missing", "a NEMWEB report holds all regions: pass --region")
        tables = nemweb.parse_cid(nemweb.unzip_report(f.read_bytes(), f.name, provider), f.name, provider)
        out = nemweb.prices_from_report(tables, region, f.name, provider)
        out["is_forecast"] = out["provenance"] != "dispatch"
        return expand_to_5min(out, 30) if out["provenance"].iloc[0] == "predispatch" else out
    if kind == "dispatchprice":
        if not region:
            raise PriceDataError(provider, "region_missing", f"{f.name} holds all regions: pass --region")
        return read_dispatchprice_csv(f, region, provider)
    if kind == "price_and_demand":
        try:
            raw = read_aemo_price_and_demand(f, region)
        except PriceFileError as exc:
            raise PriceDataError(provider, "bad_file", str(exc)) from None
        raw["provenance"] = "price_and_demand"
        raw["is_forecast"] = False
        return raw
    raise PriceDataError(provider, "not_wholesale", f"{f.name} is a normalised price file, not wholesale RRP")


def read_aemo_file(path: str | Path, region: str | None, retail: RetailMapping | None = None,
                   threshold_per_mwh: float = 3000.0, source: str = "aemo_file") -> pd.DataFrame:
    """``--file`` for ``kind: aemo``: any AEMO price file (or a normalised CSV) -> the normalised frame."""
    f = Path(path)
    if f.exists() and sniff_aemo_file(f) == "normalized":
        return read_normalized_csv(f, source=source)
    raw = read_wholesale_file(f, region)
    out = frame_from_rrp(raw, retail or RetailMapping(), threshold_per_mwh, source=source,
                         fetched_at=pd.Timestamp("1970-01-01", tz="UTC"))
    out.attrs["warnings"] = raw.attrs.get("warnings", [])
    return out
