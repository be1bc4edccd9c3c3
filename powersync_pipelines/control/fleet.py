"""Running one planning stage over many sites: bounded parallelism, a deadline per site, timings per stage,
and price frames fetched once per provider and shared by every site that has the same provider.

Pure (no Dagster): the planning assets and the fleet benchmark use it. A site's exception, or a site that
overruns its deadline (a battery that never answers), is that site's failure; the other sites go on. A thread
that overran is left to finish on its own (its device driver has its own per-request timeout and closes its
connection); the stage does not wait for it.
"""

from __future__ import annotations

import os
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from ..config import SiteConfig
from ..prices.registry import fetch_price_frame

T = TypeVar("T")

DEFAULT_WORKERS = 16  # device I/O waits on the network, not the CPU: more threads than cores
DEFAULT_SITE_TIMEOUT_S = 60.0


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None


def fleet_workers() -> int:
    """Sites handled at once in a device stage (``$POWERSYNC_FLEET_WORKERS``, default 16)."""
    return max(1, int(_env_number("POWERSYNC_FLEET_WORKERS", DEFAULT_WORKERS)))


def site_timeout_s() -> float:
    """How long one site may take in one stage before it is recorded as failed
    (``$POWERSYNC_SITE_TIMEOUT_S``, default 60)."""
    return max(0.1, _env_number("POWERSYNC_SITE_TIMEOUT_S", DEFAULT_SITE_TIMEOUT_S))


def shard_count() -> int:
    """Planning shards (``$POWERSYNC_SHARDS``, default 1: one run plans the fleet)."""
    raw = os.environ.get("POWERSYNC_SHARDS", "").strip()
    try:
        n = int(raw) if raw else 1
    except ValueError:
        raise ValueError(f"POWERSYNC_SHARDS must be a whole number of at least 1, not {raw!r}") from None
    if n < 1:
        raise ValueError(f"POWERSYNC_SHARDS must be a whole number of at least 1, not {raw!r}")
    return n


def shard_of(site_id: str, shards: int) -> int:
    """The shard (0-based) of a site: crc32 of its id, so every process and every restart agrees (Python's
    ``hash()`` of a string is salted per process) and adding a site never moves the others."""
    return zlib.crc32(site_id.encode("utf-8")) % shards


def shard_key(index: int, shards: int) -> str:
    """The partition key of a shard, e.g. ``shard-03-of-16`` (1-based, zero-padded so keys sort in order)."""
    width = max(2, len(str(shards)))
    return f"shard-{index + 1:0{width}d}-of-{shards:0{width}d}"


def shard_keys(shards: int) -> list[str]:
    return [shard_key(i, shards) for i in range(shards)]


def sites_of_shard(key: str, site_ids: Iterable[str]) -> list[str]:
    """The sites (in the given order) that a shard key plans; a key that is not ``shard-I-of-N`` is an error."""
    try:
        _, index, _, total = key.split("-")
        i, n = int(index) - 1, int(total)
    except ValueError:
        raise ValueError(f"not a shard partition key: {key!r} (expected shard-I-of-N)") from None
    if not 0 <= i < n or key != shard_key(i, n):
        raise ValueError(f"not a shard partition key: {key!r} (expected shard-I-of-N)")
    return [s for s in site_ids if shard_of(s, n) == i]


class SiteTimeout(TimeoutError):
    pass


@dataclass
class SiteOutcome:
    site_id: str
    ms: float
    error: str | None = None


@dataclass
class StageReport:
    """What one stage did across the sites: per-site wall time and each site's error."""

    stage: str
    outcomes: list[SiteOutcome] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def failures(self) -> list[SiteOutcome]:
        return [o for o in self.outcomes if o.error is not None]

    def percentiles(self) -> dict[str, float]:
        """p50/p95/max of the per-site milliseconds (0 when no site ran)."""
        ms = np.array([o.ms for o in self.outcomes], dtype=float)
        if not len(ms):
            return {"p50": 0.0, "p95": 0.0, "max": 0.0}
        return {"p50": round(float(np.percentile(ms, 50)), 2), "p95": round(float(np.percentile(ms, 95)), 2),
                "max": round(float(ms.max()), 2)}

    def summary(self) -> dict[str, Any]:
        return {"sites": len(self.outcomes), "failed": len(self.failures), "wall_s": round(self.wall_s, 3),
                **{f"{k}_ms": v for k, v in self.percentiles().items()}}


def run_sites(stage: str, items: Iterable[tuple[str, T]], step: Callable[[str, T], None], *,
              workers: int = 1, timeout_s: float | None = None,
              between: Callable[[], None] | None = None) -> StageReport:
    """Run ``step(site_id, item)`` for every item, at most ``workers`` at once; each site's time and error are
    in the report. With ``workers == 1`` the sites run in order on the calling thread (no deadline: nothing
    else would be waiting). ``between`` is called on the calling thread between sites (the stage store
    lets other writers in there)."""
    report = StageReport(stage)
    t0 = time.perf_counter()
    todo = list(items)
    if workers <= 1:
        for site_id, item in todo:
            report.outcomes.append(_timed(site_id, item, step))
            if between is not None:
                between()
        report.wall_s = time.perf_counter() - t0
        return report
    deadline_s = timeout_s if timeout_s is not None else site_timeout_s()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"fleet-{stage}")
    running: dict[Future[SiteOutcome], tuple[str, float]] = {}
    pending = iter(todo)
    try:
        while True:
            while len(running) < workers:
                nxt = next(pending, None)
                if nxt is None:
                    break
                running[pool.submit(_timed, nxt[0], nxt[1], step)] = (nxt[0], time.monotonic())
            if not running:
                break
            now = time.monotonic()
            soonest = min(started for _, started in running.values()) + deadline_s
            done, _ = wait(running, timeout=max(0.0, soonest - now), return_when=FIRST_COMPLETED)
            for fut in done:
                running.pop(fut)
                report.outcomes.append(fut.result())
            now = time.monotonic()
            for fut, (site_id, started) in list(running.items()):
                if now - started >= deadline_s:  # abandoned: its slot is given to the next site
                    running.pop(fut)
                    fut.cancel()
                    report.outcomes.append(SiteOutcome(site_id, (now - started) * 1000, (
                        f"{SiteTimeout.__name__}: no result within {deadline_s:g} s (the device did not answer "
                        "in time); this site is skipped for this cycle")))
            if between is not None:
                between()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    report.wall_s = time.perf_counter() - t0
    return report


def _timed(site_id: str, item: T, step: Callable[[str, T], None]) -> SiteOutcome:
    t = time.perf_counter()
    try:
        step(site_id, item)
    except Exception as exc:  # the site's failure is data for the report, never the end of the stage
        return SiteOutcome(site_id, (time.perf_counter() - t) * 1000, f"{type(exc).__name__}: {exc}")
    return SiteOutcome(site_id, (time.perf_counter() - t) * 1000)


class SharedPrices:
    """A price fetcher for :func:`..prices.fallback.fetch_with_fallback` that fetches each distinct provider
    section once per planning instant and hands every site a copy: 300 sites on one AEMO region and retail
    mapping cost one fetch, not 300. Sites whose provider sections differ (another region, another retail
    mapping, another Amber site) get their own fetch. A failed fetch is not cached: the next site retries."""

    def __init__(self) -> None:
        self._frames: dict[tuple[str, str, float], pd.DataFrame] = {}
        self._locks: dict[tuple[str, str, float], threading.Lock] = {}
        self._guard = threading.Lock()
        self.fetches = 0
        self.shared = 0

    @staticmethod
    def key(site: SiteConfig, now: pd.Timestamp, horizon_hours: float = 48) -> tuple[str, str, float]:
        """Which shared frame a site gets: its provider section (and where relative files resolve), the instant
        and the horizon."""
        return (f"{site.base_dir}|{site.provider.model_dump_json()}", pd.Timestamp(now).isoformat(),
                float(horizon_hours))

    def __call__(self, site: SiteConfig, now: pd.Timestamp, horizon_hours: float = 48,
                 **kwargs: Any) -> pd.DataFrame:
        key = self.key(site, now, horizon_hours)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            frame = self._frames.get(key)
            if frame is None:
                frame = fetch_price_frame(site, now, horizon_hours=horizon_hours, **kwargs)
                self._frames[key] = frame
                self.fetches += 1
            else:
                self.shared += 1
        out = frame.copy()
        out.attrs = dict(frame.attrs)
        return out
