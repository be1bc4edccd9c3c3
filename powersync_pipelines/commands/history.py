"""``powersync history compact``: history retention from the command line, the same code as the daily
``history_retention`` job (``storage/retention.py``): old plans keep only their schedule rows in effect."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "History retention: `history compact` keeps old plans' schedule rows in effect and deletes the superseded"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    p = sub.add_parser("compact", help="compact plans older than --keep-days to the schedule rows that were in effect",
                       description="Delete the schedule rows of plans older than --keep-days (before each site's "
                       "newest plan) that a later plan superseded; what the history, HA and the page read stays "
                       "the same. Forecasts and the published-forecast archive are counted, never deleted.")
    p.add_argument("--keep-days", help="keep plans this recent whole (days, default $POWERSYNC_SCHEDULE_KEEP_DAYS "
                                       "or 2)")
    p.add_argument("--dry-run", action="store_true", help="count what would be deleted; change nothing")
    p.add_argument("--full", action="store_true", help="re-examine every old plan, not only those since the last run")
    p.add_argument("--site-id", action="append", help="only this site (repeatable; default every site with plans)")
    p.add_argument("--db", help="DuckDB file or postgresql:// URL (default $POWERSYNC_DATABASE_URL, else the DuckDB "
                                "file under $POWERSYNC_HOME)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output (default table)")


def _mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:,.1f} MB"


def render_table(report: dict) -> str:
    """The report as the terminal table: rows per table, sizes, time."""
    verb = "would delete" if report["dry_run"] else "deleted"
    lines = [f"history {report['location']} ({report['backend']}), keep_days {report['keep_days']:g}"
             + (" (dry run)" if report["dry_run"] else ""),
             f"{'table':<24}{'before':>14}{verb:>14}{'after':>14}  policy"]
    for t in report["tables"]:
        lines.append(f"{t['table']:<24}{t['before']:>14,}{t['deleted']:>14,}{t['after']:>14,}  {t['policy']}")
    examined = sum(s["plans_examined"] for s in report["sites"])
    lines.append(f"{len(report['sites'])} sites, {examined:,} old plans examined in {report['batches']} batches, "
                 f"{report['seconds']:.1f} s (longest batch {report['longest_batch_s']:.2f} s)")
    size = f"size {_mb(report['size_before_bytes'])} -> {_mb(report['size_after_bytes'])}"
    if report["used_before_bytes"] is not None:
        size += f" (blocks in use {_mb(report['used_before_bytes'])} -> {_mb(report['used_after_bytes'])})"
    lines.append(size)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..storage import HistoryStore, StorageError
    from ..storage.retention import RetentionError, compact_history, keep_days_setting

    if args.action != "compact":
        print("error: give an action: powersync history compact [--keep-days N] [--dry-run] [--format table|json]",
              file=sys.stderr)
        return 2
    try:
        days = keep_days_setting(args.keep_days)
        store = HistoryStore(args.db)
        report = compact_history(store, days, dry_run=args.dry_run, full=args.full, sites=args.site_id,
                                 log=None if args.format == "json" else lambda m: print(m, file=sys.stderr))
    except (RetentionError, StorageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.site_id:
        unknown = sorted(set(args.site_id) - {s.site_id for s in report.sites})
        if unknown:
            print(f"warning: no plans stored for site(s) {', '.join(unknown)}", file=sys.stderr)
    out = report.to_dict()
    print(json.dumps(out, indent=1) if args.format == "json" else render_table(out))
    return 0
