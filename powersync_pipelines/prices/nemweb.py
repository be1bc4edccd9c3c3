"""NEMWEB report format: directory listings, zipped reports, and the multi-table C/I/D CSV inside.

Format facts (reference/nemweb.md §1-2): a report is a zip holding one CSV whose rows are ``C`` (file
header / footer), ``I`` (a table's column names) and ``D`` (that table's data). Column order in real files
differs from the MMS Data Model, so tables are parsed by the names in their ``I`` row, never by position.
Times are NEM time (UTC+10, no DST) and stamp the interval END.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import PriceDataError
from .http import looks_like_html
from .quality import clean_intervals, shown

NEM_OFFSET = pd.Timedelta(hours=10)
NEM_TIME_FORMAT = "%Y/%m/%d %H:%M:%S"
REGIONS = ("NSW1", "QLD1", "SA1", "TAS1", "VIC1")

FOLDERS = {
    "dispatch": "/Reports/Current/DispatchIS_Reports/",
    "p5min": "/Reports/Current/P5_Reports/",
    "predispatch": "/Reports/Current/PredispatchIS_Reports/",
}
FILE_PATTERNS = {
    "dispatch": re.compile(r"PUBLIC_DISPATCHIS_(\d{12})_\d{16}\.zip", re.IGNORECASE),
    "p5min": re.compile(r"PUBLIC_P5MIN_(\d{12})_\d{14}\.zip", re.IGNORECASE),
    "predispatch": re.compile(r"PUBLIC_PREDISPATCHIS_(\d{12})_\d{14}\.zip", re.IGNORECASE),
}
_HREF = re.compile(r"""href\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


@dataclass(frozen=True)
class ListedFile:
    name: str
    href: str
    stamp: str  # the 12-digit NEM-time stamp in the name (interval end / run time)


def parse_listing(html: str, kind: str, provider: str = "aemo") -> list[ListedFile]:
    """Report files in a NEMWEB directory listing, oldest first.

    Parsed with a regex on the file-name pattern, never on the page layout: the server has been seen as
    IIS (upper-case ``A HREF``, one long line) and as an Apache index.
    """
    pattern = FILE_PATTERNS[kind]
    found: dict[str, ListedFile] = {}
    for href in _HREF.findall(html):
        name = href.rsplit("/", 1)[-1]
        m = pattern.fullmatch(name)
        if m:
            found[name.upper()] = ListedFile(name=name, href=href, stamp=m.group(1))
    if not found:
        if "<html" not in html.lower() and "<pre" not in html.lower():
            raise PriceDataError(provider, "bad_listing", f"{kind} listing is not an HTML directory page")
        raise PriceDataError(provider, "empty_listing", f"no {pattern.pattern} files in the {kind} listing")
    return sorted(found.values(), key=lambda f: (f.stamp, f.name.upper()))


def unzip_report(data: bytes, name: str, provider: str = "aemo") -> str:
    """The CSV text inside a report zip (or ``data`` itself when it already is a CSV)."""
    if looks_like_html(data):
        raise PriceDataError(provider, "html_instead_of_report", f"{name} is an HTML page, not a report")
    if not data.startswith(b"PK"):
        text = data.decode("ascii", errors="replace")
        if text.lstrip().startswith("C,"):
            return text
        raise PriceDataError(provider, "not_a_report", f"{name} is neither a zip nor a C/I/D CSV")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = [m for m in zf.namelist() if m.upper().endswith(".CSV")]
            if not members:
                raise PriceDataError(provider, "empty_zip", f"{name} holds no CSV")
            return "".join(zf.read(m).decode("ascii", errors="replace") for m in members)
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:  # cut-off download, CRC mismatch
        raise PriceDataError(provider, "truncated_zip", f"{name}: {exc}") from None


def parse_cid(text: str, name: str = "report", provider: str = "aemo") -> dict[str, pd.DataFrame]:
    """All tables of a C/I/D CSV as string frames keyed ``PACKAGE.TABLE`` (e.g. ``DISPATCH.PRICE``).

    Checks the footer ``C,"END OF REPORT",<lines>`` so a cut-off download is an error, not a short table.
    """
    lines = text.splitlines()
    if not lines or not lines[0].startswith("C,"):
        raise PriceDataError(provider, "not_a_report", f"{name}: first line is not a C header row")
    rows = list(csv.reader(lines))
    footer = rows[-1]
    if not (len(footer) >= 2 and footer[0] == "C" and footer[1].strip().upper() == "END OF REPORT"):
        raise PriceDataError(provider, "truncated_report", f"{name}: no END OF REPORT footer (cut off?)")
    if len(footer) >= 3 and footer[2].strip().isdigit() and int(footer[2]) != len(lines):
        raise PriceDataError(provider, "truncated_report",
                             f"{name}: footer says {footer[2]} lines, file has {len(lines)}")
    tables: dict[str, list[list[str]]] = {}
    headers: dict[str, list[str]] = {}
    for n, row in enumerate(rows, start=1):
        if not row or row[0] == "C":
            continue
        if len(row) < 4:
            raise PriceDataError(provider, "malformed_report", f"{name} line {n}: too few fields")
        key = f"{row[1]}.{row[2]}".upper()
        if row[0] == "I":
            headers[key] = [c.strip().upper() for c in row[4:]]
            tables.setdefault(key, [])
        elif row[0] == "D":
            if key not in headers:
                raise PriceDataError(provider, "malformed_report", f"{name} line {n}: D row for {key} before its I row")
            if len(row) - 4 != len(headers[key]):
                raise PriceDataError(provider, "malformed_report",
                                     f"{name} line {n}: {key} row has {len(row) - 4} values for {len(headers[key])} columns")
            tables[key].append(row[4:])
        else:
            raise PriceDataError(provider, "malformed_report", f"{name} line {n}: unknown row type {row[0]!r}")
    return {k: pd.DataFrame(v, columns=headers[k]) for k, v in tables.items()}


def nem_end_to_utc_start(values: pd.Series, minutes: int, provider: str = "aemo",
                         what: str = "SETTLEMENTDATE") -> pd.DatetimeIndex:
    """NEM-time interval END strings (``2025/12/27 00:05:00``) -> UTC interval STARTs."""
    try:
        ends = pd.to_datetime(values.str.strip().str.strip('"'), format=NEM_TIME_FORMAT)
    except (ValueError, AttributeError) as exc:
        raise PriceDataError(provider, "bad_timestamp", f"{what}: {exc}") from None
    return pd.DatetimeIndex(ends - NEM_OFFSET - pd.Timedelta(minutes=minutes)).tz_localize("UTC")


def _table(tables: dict[str, pd.DataFrame], key: str, name: str, provider: str) -> pd.DataFrame:
    if key not in tables:
        raise PriceDataError(provider, "missing_table", f"{name} has no {key} table (tables: {sorted(tables)})")
    return tables[key]


def _need(df: pd.DataFrame, cols: tuple[str, ...], key: str, provider: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise PriceDataError(provider, "missing_columns", f"{key} lacks {missing}")


def _pricing_run(df: pd.DataFrame, region: str, key: str, provider: str) -> pd.DataFrame:
    """Rows for ``region`` from the pricing run (INTERVENTION = 0), as every public client uses."""
    if region not in REGIONS:
        raise PriceDataError(provider, "unknown_region", f"{region!r} is not one of {', '.join(REGIONS)}")
    out = df[df["REGIONID"].str.strip() == region]
    if "INTERVENTION" in out:
        out = out[pd.to_numeric(out["INTERVENTION"], errors="coerce").fillna(0) == 0]
    if out.empty:
        raise PriceDataError(provider, "no_rows_for_region", f"{key} has no pricing-run rows for {region}")
    return out


def _rrp(df: pd.DataFrame, key: str, provider: str) -> pd.Series:
    rrp = pd.to_numeric(df["RRP"], errors="coerce")
    bad = ~np.isfinite(rrp.to_numpy(dtype=float))
    if bad.any():
        raise PriceDataError(provider, "nan_prices", f"{key}: {int(bad.sum())} missing or non-finite RRP value(s), "
                             f"first {shown(df['RRP'].iloc[int(np.flatnonzero(bad)[0])])}")
    return rrp


def _frame(idx: pd.DatetimeIndex, rrp: pd.Series, stage: str, key: str, provider: str,
           **extra: object) -> pd.DataFrame:
    out = pd.DataFrame({"rrp": rrp.to_numpy(dtype=float), "provenance": stage, **extra}, index=idx)
    out.index.name = "interval_start"
    return clean_intervals(out, provider, ("rrp",), f"{key}: ")


def dispatch_prices(tables: dict[str, pd.DataFrame], region: str, name: str = "DISPATCHIS",
                    provider: str = "aemo") -> pd.DataFrame:
    """``DISPATCH.PRICE`` -> ``rrp`` ($/MWh ex-GST) and ``price_status`` by UTC interval start."""
    key = "DISPATCH.PRICE"
    df = _table(tables, key, name, provider)
    _need(df, ("SETTLEMENTDATE", "REGIONID", "RRP"), key, provider)
    df = _pricing_run(df, region, key, provider)
    extra = {"price_status": df["PRICE_STATUS"].str.strip().to_numpy()} if "PRICE_STATUS" in df else {}
    return _frame(nem_end_to_utc_start(df["SETTLEMENTDATE"], 5, provider), _rrp(df, key, provider),
                  "dispatch", key, provider, **extra)


def p5min_prices(tables: dict[str, pd.DataFrame], region: str, name: str = "P5MIN",
                 provider: str = "aemo") -> pd.DataFrame:
    """``P5MIN.REGIONSOLUTION`` -> 5-minute forecast ``rrp`` by UTC interval start (one run)."""
    key = "P5MIN.REGIONSOLUTION"
    df = _table(tables, key, name, provider)
    _need(df, ("RUN_DATETIME", "INTERVAL_DATETIME", "REGIONID", "RRP"), key, provider)
    df = _pricing_run(df, region, key, provider)
    latest_run = df["RUN_DATETIME"].max()
    df = df[df["RUN_DATETIME"] == latest_run]
    return _frame(nem_end_to_utc_start(df["INTERVAL_DATETIME"], 5, provider, "INTERVAL_DATETIME"),
                  _rrp(df, key, provider), "p5min", key, provider)


def predispatch_prices(tables: dict[str, pd.DataFrame], region: str, name: str = "PREDISPATCHIS",
                       provider: str = "aemo") -> pd.DataFrame:
    """``PREDISPATCH.REGION_PRICES`` -> 30-minute forecast ``rrp`` by UTC period start."""
    key = "PREDISPATCH.REGION_PRICES"
    df = _table(tables, key, name, provider)
    _need(df, ("DATETIME", "REGIONID", "RRP"), key, provider)
    df = _pricing_run(df, region, key, provider)
    return _frame(nem_end_to_utc_start(df["DATETIME"], 30, provider, "DATETIME"),
                  _rrp(df, key, provider), "predispatch", key, provider)


def report_kind(tables: dict[str, pd.DataFrame]) -> str:
    """Which report a parsed CSV is (so ``--file`` works for any of the three)."""
    if "DISPATCH.PRICE" in tables:
        return "dispatch"
    if "P5MIN.REGIONSOLUTION" in tables:
        return "p5min"
    if "PREDISPATCH.REGION_PRICES" in tables:
        return "predispatch"
    return "unknown"


def prices_from_report(tables: dict[str, pd.DataFrame], region: str, name: str = "report",
                       provider: str = "aemo") -> pd.DataFrame:
    kind = report_kind(tables)
    if kind == "dispatch":
        return dispatch_prices(tables, region, name, provider)
    if kind == "p5min":
        return p5min_prices(tables, region, name, provider)
    if kind == "predispatch":
        return predispatch_prices(tables, region, name, provider)
    raise PriceDataError(provider, "unknown_report", f"{name}: no DISPATCH.PRICE, P5MIN.REGIONSOLUTION or "
                         f"PREDISPATCH.REGION_PRICES table (tables: {sorted(tables)})")
