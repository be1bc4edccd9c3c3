"""``powersync sql``: one SQL query against the history, wherever it is (the DuckDB file or PostgreSQL).

The README's queries are written in the SQL both engines accept, so the same text answers on either. DuckDB's
``postgres`` extension is not used for this: it is downloaded at first use, which an offline host cannot do, and
its binaries must match the exact DuckDB version. On PostgreSQL the query therefore runs on the server itself.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "Run one SQL query on the history (DuckDB file, or PostgreSQL when POWERSYNC_DATABASE_URL is set)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", nargs="?", help="the SQL text (or --file)")
    parser.add_argument("--file", help="read the SQL from this file")
    parser.add_argument("--db", help="DuckDB file or postgresql:// URL (default $POWERSYNC_DATABASE_URL, else the "
                                     "DuckDB file under $POWERSYNC_HOME)")
    parser.add_argument("--json", action="store_true", help="print the rows as a JSON list of objects")
    parser.add_argument("--limit", type=int, default=200, help="rows to print as a table (default 200; JSON: all)")


def run(args: argparse.Namespace) -> int:
    from ..storage import HistoryStore, StorageError

    if bool(args.query) == bool(args.file):
        print("error: give the SQL as an argument or with --file, not both or neither", file=sys.stderr)
        return 2
    try:
        sql = Path(args.file).read_text() if args.file else args.query
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        store = HistoryStore(args.db)
        frame = store.query(sql)
    except StorageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the engine's own SQL error (duckdb.Error, psycopg.Error): one line, no traceback
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"error: {type(exc).__name__}: {first}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(json.loads(frame.to_json(orient="records", date_format="iso")), indent=1))
    else:
        import pandas as pd

        with pd.option_context("display.max_columns", None, "display.width", 200):
            print(frame.head(args.limit).to_string(index=False) if len(frame) else "(no rows)")
        if len(frame) > args.limit:
            print(f"... {len(frame) - args.limit} more rows (--limit, or --json for all)")
    return 0
