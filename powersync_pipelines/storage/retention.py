"""History retention: compact old plans to the schedule rows that were in effect, and report what every
growing table holds.

Every 5-minute plan stores its whole 48 h horizon (576 ``schedule`` rows), but what anyone reads about the past
is the plan *in effect* for each interval: ``control.history.planned_rates`` (the calendar history's planned
cost, Home Assistant's predicted cost) prices each interval from the latest plan covering it, and the live
path reads only the latest plan or the plan of its own slot. So a ``schedule`` row of a plan is superseded once
a plan of the same site created later covers the same interval; for a plan older than the retention age those
rows are deleted and the rest kept. On a regular 5-minute cadence that leaves about one row per old plan (the
interval until the next plan took over) plus whatever no later plan covered (a gap in planning keeps the last
plan's horizon through the gap), so ``planned_rates`` returns exactly the same rows after compaction. Plans
created at the same instant never supersede each other (both rows stay, as ``planned_rates`` sees them).

The age is measured from each site's newest plan (``keep_days`` before it), not from the wall clock: a site
whose planning stopped keeps its last days whole, and a wrong clock cannot compact recent plans. The ``plans``
rows (one per plan: cost, savings, solver) are always kept.

``forecasts`` is not compacted: it holds one row per (site, kind, interval), each issue replacing the last,
so it stores nothing superseded. ``price_forecast_archive`` is never deleted: it is the record of provider
forecasts as published, for later backtests. Both are counted in the report.

Deletes run per site in batches of plans, one transaction per batch, each on its own connection: on DuckDB a
planning cycle waiting for the file lock waits at most one batch. ``history_retention`` records per site how far
compaction has got, so the daily run reads only the plans created since (``full`` re-examines every plan).
Compacting again deletes nothing. Pure: no Dagster.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from .db import HistoryStore, stored_time, upsert_sql

KEEP_DAYS_ENV = "POWERSYNC_SCHEDULE_KEEP_DAYS"
DEFAULT_KEEP_DAYS = 2.0  # a full plan horizon of whole plans to inspect; everything read later is kept anyway
BATCH_PLANS = 144  # plans per delete transaction (half a day of 5-minute plans)
COUNTED_TABLES = ("schedule", "plans", "forecasts", "price_forecast_archive")
POLICIES = {
    "schedule": "compacted: plans older than keep_days keep only the rows in effect",
    "plans": "kept: one summary row per plan",
    "forecasts": "kept: one row per site, kind and interval (each issue replaces the last)",
    "price_forecast_archive": "kept: provider forecasts as published, for backtests",
}


class RetentionError(ValueError):
    """A retention setting that cannot be used (one line saying why)."""


def keep_days_setting(value: str | float | None = None, env: Mapping[str, str] | None = None) -> float:
    """The retention age in days: ``value`` if given, else ``$POWERSYNC_SCHEDULE_KEEP_DAYS``, else the default."""
    source = "--keep-days"
    if value is None:
        value = (os.environ if env is None else env).get(KEEP_DAYS_ENV) or None
        source = KEEP_DAYS_ENV
    if value is None:
        return DEFAULT_KEEP_DAYS
    try:
        days = float(value)
    except (TypeError, ValueError):
        raise RetentionError(f"{source} must be a number of days, got {value!r}") from None
    if not days >= 0 or days == float("inf"):
        raise RetentionError(f"{source} must be a finite number of days >= 0, got {value!r}")
    return days


@dataclass
class TableReport:
    """Rows of one table before and after, and what retention does with it."""

    table: str
    before: int
    deleted: int
    after: int
    policy: str


@dataclass
class SiteReport:
    """One site's compaction: the cutoff (newest plan - keep_days), plans looked at, rows deleted."""

    site_id: str
    cutoff: str
    plans_examined: int
    rows_deleted: int


@dataclass
class RetentionReport:
    """What one compaction did (or, with ``dry_run``, would do). Sizes are the DuckDB file (``used_bytes``:
    its blocks in use) or the PostgreSQL database."""

    backend: str
    location: str
    keep_days: float
    dry_run: bool
    tables: list[TableReport] = field(default_factory=list)
    sites: list[SiteReport] = field(default_factory=list)
    batches: int = 0
    longest_batch_s: float = 0.0  # the longest a writer waited for the history while compaction held it
    seconds: float = 0.0
    size_before_bytes: int | None = None
    size_after_bytes: int | None = None
    used_before_bytes: int | None = None
    used_after_bytes: int | None = None

    def table(self, name: str) -> TableReport:
        return next(t for t in self.tables if t.table == name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _count(con: Any, table: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _sizes(store: HistoryStore, con: Any) -> tuple[int | None, int | None]:
    """(size, used) in bytes: the DuckDB file and its blocks in use, or the PostgreSQL database (used: None)."""
    if store.url is not None:
        return int(con.execute("SELECT pg_database_size(current_database())").fetchone()[0]), None
    row = con.execute("SELECT block_size, used_blocks FROM pragma_database_size()").fetchone()
    size = store.path.stat().st_size if store.path is not None and store.path.exists() else None
    return size, int(row[0]) * int(row[1])


_SUPERSEDED = (
    "FROM schedule, plans p, ("
    "  SELECT s2.interval_start, max(q.created_at) AS newest FROM schedule s2 JOIN plans q ON q.plan_id = s2.plan_id"
    "  WHERE s2.site_id = ? AND s2.interval_start >= ? AND s2.interval_start <= ? GROUP BY s2.interval_start"
    ") latest "
    "WHERE schedule.site_id = ? AND schedule.plan_id = p.plan_id AND p.plan_id IN ({ids}) "
    "AND latest.interval_start = schedule.interval_start AND p.created_at < latest.newest"
)


def _compact_batch(con: Any, site_id: str, plan_ids: Sequence[str], dry_run: bool) -> int:
    """Delete (or count) the batch's superseded rows; returns how many. The caller holds the transaction."""
    ids = ", ".join("?" for _ in plan_ids)
    lo, hi = con.execute(f"SELECT min(interval_start), max(interval_start) FROM schedule "
                         f"WHERE site_id = ? AND plan_id IN ({ids})", [site_id, *plan_ids]).fetchone()
    if lo is None:
        return 0
    params = [site_id, lo, hi, site_id, *plan_ids]
    where = _SUPERSEDED.format(ids=ids)
    if dry_run:
        return int(con.execute(f"SELECT count(*) {where}", params).fetchone()[0])
    count_sql = f"SELECT count(*) FROM schedule WHERE site_id = ? AND plan_id IN ({ids})"
    before = int(con.execute(count_sql, [site_id, *plan_ids]).fetchone()[0])
    # DELETE ... USING: the row's own plan and the newest plan covering its interval
    con.execute("DELETE " + where.replace("FROM schedule, ", "FROM schedule USING ", 1), params)
    return before - int(con.execute(count_sql, [site_id, *plan_ids]).fetchone()[0])


_WATERMARK_SQL = upsert_sql("history_retention", ["site_id", "compacted_before", "keep_days", "updated_at"],
                            ["site_id"])


def compact_site(store: HistoryStore, site_id: str, keep_days: float, *, dry_run: bool = False, full: bool = False,
                 batch_plans: int = BATCH_PLANS) -> tuple[SiteReport, list[float]]:
    """Compact one site's plans older than ``keep_days`` before its newest plan; (report, seconds per batch)."""
    with store.connect() as con:  # the site's reads on one connection (each DuckDB open reads the catalog)
        newest = con.execute("SELECT max(created_at) FROM plans WHERE site_id = ?", [site_id]).fetchone()[0]
        if newest is None:
            return SiteReport(site_id, "", 0, 0), []
        cutoff = stored_time(newest) - pd.Timedelta(days=keep_days)
        sql = "SELECT plan_id, created_at FROM plans WHERE site_id = ? AND created_at < ?"
        params: list[Any] = [site_id, cutoff.to_pydatetime()]
        mark = None if full else con.execute("SELECT compacted_before FROM history_retention WHERE site_id = ?",
                                             [site_id]).fetchone()
        if mark is not None:
            sql += " AND created_at >= ?"  # plans at the mark itself again: ties with the last batch's newest plan
            params.append(stored_time(mark[0]).to_pydatetime())
        plans = con.execute(sql + " ORDER BY created_at, plan_id", params).df()
    deleted, took = 0, []
    for start in range(0, len(plans), batch_plans):
        chunk = plans.iloc[start:start + batch_plans]
        ids = [str(p) for p in chunk["plan_id"]]
        t0 = time.perf_counter()
        with store.connect() as con:
            con.execute("BEGIN")
            try:
                deleted += _compact_batch(con, site_id, ids, dry_run)
                if not dry_run:
                    con.execute(_WATERMARK_SQL, [site_id, stored_time(chunk["created_at"].iloc[-1]).to_pydatetime(),
                                                 float(keep_days), pd.Timestamp.now(tz="UTC").to_pydatetime()])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        took.append(time.perf_counter() - t0)
    return SiteReport(site_id, cutoff.isoformat(), len(plans), deleted), took


def compact_history(store: HistoryStore, keep_days: float | None = None, *, dry_run: bool = False, full: bool = False,
                    sites: Sequence[str] | None = None, batch_plans: int = BATCH_PLANS,
                    log: Callable[[str], None] | None = None) -> RetentionReport:
    """Compact every site's (or ``sites``') old plans, then make the space reusable (DuckDB ``CHECKPOINT``,
    PostgreSQL ``VACUUM``); the report has rows per table before/deleted/after, sizes and seconds."""
    days = keep_days_setting(keep_days)
    if batch_plans < 1:
        raise RetentionError(f"batch_plans must be >= 1, got {batch_plans}")
    t0 = time.perf_counter()
    report = RetentionReport(store.backend, store.describe(), days, dry_run)
    with store.connect() as con:
        before = {t: _count(con, t) for t in COUNTED_TABLES}
        report.size_before_bytes, report.used_before_bytes = _sizes(store, con)
        known = [r[0] for r in con.execute("SELECT DISTINCT site_id FROM plans ORDER BY site_id").fetchall()]
        if store.url is not None:  # fresh statistics: after a bulk of new plans a stale estimate makes the
            con.execute("ANALYZE schedule, plans")  # batch's join a nested loop over all the site's rows
    wanted = None if sites is None else set(sites)
    chosen = [s for s in known if wanted is None or s in wanted]
    for site_id in chosen:
        site, took = compact_site(store, site_id, days, dry_run=dry_run, full=full, batch_plans=batch_plans)
        report.sites.append(site)
        report.batches += len(took)
        report.longest_batch_s = round(max([report.longest_batch_s, *took]), 3)
        if log is not None and site.plans_examined:
            log(f"{site_id}: {site.plans_examined} plans before {site.cutoff}, "
                f"{site.rows_deleted} schedule rows {'to delete' if dry_run else 'deleted'} in {len(took)} batches")
    deleted = sum(s.rows_deleted for s in report.sites)
    with store.connect() as con:
        if not dry_run and deleted:
            con.execute("CHECKPOINT" if store.url is None else "VACUUM (ANALYZE) schedule")
        after = {t: _count(con, t) for t in COUNTED_TABLES}
        report.size_after_bytes, report.used_after_bytes = _sizes(store, con)
    if dry_run:
        after["schedule"] = before["schedule"] - deleted
    for t in COUNTED_TABLES:
        report.tables.append(TableReport(t, before[t], deleted if t == "schedule" else 0, after[t], POLICIES[t]))
    report.seconds = round(time.perf_counter() - t0, 3)
    return report
