"""Saved provider payloads as a price source: ``--file`` on the CLI, and ``provider.file`` on a site.

A site of any live kind (amber, aemo, flow_power, globird, octopus) with ``provider.file`` set is served from
that saved payload instead of the network, on the same clock as the replay provider: rows after ``now`` are
flagged ``is_forecast``. ``file`` may name one file, a folder (all its payloads, e.g. Amber day files) or a
glob; later files win where intervals overlap.
"""

from __future__ import annotations

import glob
import json
from functools import lru_cache
from pathlib import Path

import pandas as pd

from ..config import ProviderConfig, SiteConfig
from ..paths import resolve_data_path
from ..schemas import finalize_price_frame
from .aemo import read_aemo_file
from .amber import read_amber_file, read_amber_files
from .errors import PriceDataError
from .flow_power import read_flow_power_file
from .globird import read_globird_file
from .history import read_normalized_csv
from .octopus import read_octopus_file

SUFFIXES = {"amber": (".json",), "octopus": (".json", ".csv")}


def expand_paths(path: str | Path, kind: str, base: Path | None = None) -> list[Path]:
    """One file, every payload in a folder, or a glob -> sorted existing files."""
    text = str(path)
    if any(ch in text for ch in "*?["):
        root = base if base and not Path(text).is_absolute() else None
        pattern = str(root / text) if root else text
        files = sorted(Path(p) for p in glob.glob(pattern))
    else:
        p = resolve_data_path(text, base)
        if p.is_dir():
            suffixes = SUFFIXES.get(kind, (".csv", ".zip"))
            files = sorted(f for f in p.iterdir() if f.suffix.lower() in suffixes)
        else:
            files = [p]
    if not files or not all(f.exists() for f in files):
        raise PriceDataError(kind, "file_not_found", f"no saved payload at {text}")
    return files


def read_provider_file(kind: str, path: str | Path, prov: ProviderConfig, tz: str,
                       export_path: str | Path | None = None) -> pd.DataFrame:
    """One saved payload of provider ``kind`` -> the normalised frame (a normalised CSV works for every kind)."""
    p = Path(path)
    if p.suffix.lower() == ".csv" and p.exists() and p.read_text(errors="replace")[:200].startswith("interval_start"):
        return read_normalized_csv(p, source=f"{kind}_file")
    if kind == "amber":
        return read_amber_file(p)
    if kind == "aemo":
        return read_aemo_file(p, prov.region, prov.retail, prov.spike_threshold_per_mwh)
    if kind == "flow_power":
        return read_flow_power_file(str(p), prov, tz)
    if kind == "globird":
        return read_globird_file(str(p), prov, tz)
    if kind == "octopus":
        return read_octopus_file(p, export_path)
    raise PriceDataError(kind, "unknown_provider", f"no saved-payload reader for provider {kind!r}")


def read_provider_files(kind: str, paths: list[Path], prov: ProviderConfig, tz: str) -> pd.DataFrame:
    if kind == "amber" and len(paths) > 1 and all(p.suffix.lower() == ".json" for p in paths):
        return read_amber_files(paths)
    frames = [read_provider_file(kind, f, prov, tz) for f in paths]
    if len(frames) == 1:
        return frames[0]
    df = pd.concat(frames)
    df = df[~df.index.duplicated(keep="last")].sort_index()
    return finalize_price_frame(df, source=str(frames[-1]["source"].iloc[0]))


_NOT_PARSE_INPUTS = {"replay_start", "stale_after_minutes", "base_url", "token_env", "site_id",
                     "request_timeout_s", "fetch_deadline_s", "resolution", "file"}


@lru_cache(maxsize=8)
def _cached(kind: str, files: tuple[str, ...], prov_json: str, tz: str) -> pd.DataFrame:
    prov = ProviderConfig.model_validate({**json.loads(prov_json), "kind": kind, "file": files[0]})
    return read_provider_files(kind, [Path(f) for f in files], prov, tz)


def saved_history(site: SiteConfig) -> pd.DataFrame:
    """Everything in the site's saved payload(s), as one validated frame (cached per file set)."""
    prov = site.provider
    if not prov.file:
        raise PriceDataError(prov.kind, "file_missing", f"site {site.id!r} has no provider.file")
    base = Path(site.base_dir) if site.base_dir else None
    files = expand_paths(prov.file, prov.kind, base)
    # only what changes the parse is part of the cache key (not the clock, tokens or timeouts)
    key = prov.model_dump_json(exclude=_NOT_PARSE_INPUTS)
    tz = site.timezone if prov.kind in ("flow_power", "globird") else "UTC"  # only TOU bands need the zone
    return _cached(prov.kind, tuple(str(f) for f in files), key, tz).copy()


def window(frame: pd.DataFrame, now: pd.Timestamp, horizon_hours: float, history_hours: float) -> pd.DataFrame:
    """``[now - history, now + horizon)``; future rows become forecasts (the replay clock's convention)."""
    now = pd.Timestamp(now).tz_convert("UTC")
    lo = now - pd.Timedelta(hours=history_hours)
    hi = now + pd.Timedelta(hours=horizon_hours)
    out = frame.loc[(frame.index >= lo.floor("5min")) & (frame.index < hi)].copy()
    if out.empty:
        raise PriceDataError(str(frame["source"].iloc[0]) if len(frame) else "saved", "outside_saved_payload",
                             f"now={now.isoformat()} is outside the saved payload "
                             f"({frame.index.min()} .. {frame.index.max()})")
    out["is_forecast"] = out["is_forecast"].astype(bool) | (out.index >= now.floor("5min"))
    out["fetched_at"] = now
    return out


def fetch_saved(site: SiteConfig, now: pd.Timestamp, horizon_hours: float = 48,
                history_hours: float = 24.0) -> pd.DataFrame:
    """The site's saved payload served around ``now`` (what each live fetcher does when ``file`` is set)."""
    return window(saved_history(site), now, horizon_hours, history_hours)


def default_saved_now(site: SiteConfig) -> pd.Timestamp:
    """A clock for a saved-payload site: ``provider.replay_start`` or one day into the payload."""
    if site.provider.replay_start:
        return pd.Timestamp(site.provider.replay_start).tz_convert("UTC").floor("5min")
    h = saved_history(site)
    return min(h.index[0] + pd.Timedelta(days=1), h.index[-1])
