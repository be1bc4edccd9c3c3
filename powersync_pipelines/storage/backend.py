"""Where the history lives: the embedded DuckDB file, or PostgreSQL when ``POWERSYNC_DATABASE_URL`` names one.

The store's callers write DB-API style SQL with ``?`` placeholders and read ``.fetchall()``, ``.fetchone()`` and
``.df()`` off ``con.execute(...)``, as DuckDB's connection offers. ``PgConnection`` gives a psycopg 3 connection
that same surface, so one SQL text serves both engines wherever it is written in the dialect they share
(``ON CONFLICT ... DO UPDATE``, window functions in a subquery instead of ``QUALIFY``). Values come back as the
DuckDB callers expect them: JSON as its text, ``numeric`` aggregates as floats, times in UTC.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import psycopg
from psycopg.adapt import Loader
from psycopg.types.string import TextLoader

from ..paths import DATABASE_URL_ENV, duckdb_path

_PG_SCHEMES = ("postgresql", "postgres")

# PostgreSQL type oids whose values need converting to the shapes DuckDB returns
_TIMESTAMPTZ, _TIMESTAMP, _DATE = 1184, 1114, 1082
_FLOATS = {700, 701, 1700}  # real, double precision, numeric
_INTS = {20, 21, 23}  # bigint, smallint, integer


class StorageError(RuntimeError):
    """The history store cannot do what was asked (bad location, unreachable server, locked file, bad rows)."""


def is_postgres_url(location: object) -> bool:
    return isinstance(location, str) and urlsplit(location).scheme in _PG_SCHEMES


def database_url() -> str | None:
    """``$POWERSYNC_DATABASE_URL`` when set (it must be a ``postgresql://`` URL), else None: the DuckDB file."""
    url = (os.environ.get(DATABASE_URL_ENV) or "").strip()
    if not url:
        return None
    if not is_postgres_url(url):
        raise StorageError(f"{DATABASE_URL_ENV} must be a postgresql://user:pass@host:port/db URL, "
                           f"got scheme {urlsplit(url).scheme or '(none)'!r}")
    return url


def history_location() -> str:
    """Where the history is: ``$POWERSYNC_DATABASE_URL`` when set, else the DuckDB file's path."""
    return database_url() or str(duckdb_path())


def redacted_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def to_pg_sql(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (and literal ``%`` doubled), leaving quoted text and comments alone."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"":
            j = sql.find(c, i + 1)
            while j != -1 and j + 1 < n and sql[j + 1] == c:  # '' inside a literal
                j = sql.find(c, j + 2)
            j = n - 1 if j == -1 else j
            out.append(sql[i:j + 1].replace("%", "%%"))
            i = j + 1
            continue
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j == -1 else j
            out.append(sql[i:j].replace("%", "%%"))
            i = j
            continue
        out.append("%s" if c == "?" else "%%" if c == "%" else c)
        i += 1
    return "".join(out)


_DOUBLE = re.compile(r"\bDOUBLE\b(?!\s+PRECISION)", re.IGNORECASE)


def to_pg_ddl(sql: str) -> str:
    """A migration's DDL for PostgreSQL: DuckDB's ``DOUBLE`` is spelled ``DOUBLE PRECISION`` there."""
    return _DOUBLE.sub("DOUBLE PRECISION", sql)


# Run before the migrations on PostgreSQL: what DuckDB has and PostgreSQL lacks, so the README's SQL runs on
# both (PostgreSQL's round() takes only numeric when a number of digits is given).
PG_COMPAT_SQL = """
CREATE OR REPLACE FUNCTION round(value double precision, digits integer) RETURNS double precision
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS 'SELECT round(value::numeric, digits)::double precision';
"""


class PgCursor:
    """The result of one statement, read the way DuckDB results are read."""

    def __init__(self, cur: Any) -> None:
        self._cur = cur

    @property
    def description(self) -> Any:
        return self._cur.description

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._cur.fetchall()] if self._cur.description else []

    def fetchone(self) -> tuple[Any, ...] | None:
        row = self._cur.fetchone() if self._cur.description else None
        return tuple(row) if row is not None else None

    def df(self) -> pd.DataFrame:
        """The rows as a DataFrame with DuckDB's dtypes: TIMESTAMPTZ as ``datetime64[ns, UTC]``, numbers as float64."""
        desc = self._cur.description or []
        names = [d.name for d in desc]
        frame = pd.DataFrame(self.fetchall(), columns=names)
        for d in desc:
            if d.type_code == _TIMESTAMPTZ:
                frame[d.name] = pd.to_datetime(frame[d.name], utc=True)
            elif d.type_code in (_TIMESTAMP, _DATE):
                frame[d.name] = pd.to_datetime(frame[d.name])
            elif d.type_code in _FLOATS or (d.type_code in _INTS and frame[d.name].isna().any()):
                frame[d.name] = frame[d.name].astype("float64")  # NULL as NaN, as DuckDB returns it
        return frame


class PgConnection:
    """A psycopg 3 connection in autocommit mode: explicit ``BEGIN``/``COMMIT`` group statements, as on DuckDB."""

    def __init__(self, url: str) -> None:
        try:
            self._con = psycopg.connect(url, autocommit=True, options="-c TimeZone=UTC", connect_timeout=10)
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StorageError(f"cannot connect to PostgreSQL at {redacted_url(url)}: {first}") from exc
        for json_type in ("json", "jsonb"):
            self._con.adapters.register_loader(json_type, TextLoader)
        self._con.adapters.register_loader("numeric", _FloatLoader)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> PgCursor:
        cur = self._con.cursor()
        if params:
            cur.execute(to_pg_sql(sql), [_pg_value(v) for v in params])
        else:
            cur.execute(sql)
        return PgCursor(cur)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._con.cursor() as cur:
            cur.executemany(to_pg_sql(sql), [[_pg_value(v) for v in r] for r in rows])

    def close(self) -> None:
        self._con.close()

    def copy(self, statement: str, text: str) -> None:
        """Run ``COPY ... FROM STDIN`` with ``text`` as its data."""
        with self._con.cursor() as cur, cur.copy(statement) as pipe:
            pipe.write(text)

    def idle(self) -> None:
        """Roll back what a caller left open (a statement failed between its BEGIN and COMMIT), so that a
        connection reused for the next call starts clean, as a fresh one would."""
        if self._con.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self._con.rollback()

    def table(self, name: str) -> PgTable:
        """The table's columns, their types and its primary key, read from the catalog."""
        rows = self.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
            "coalesce(a.attnum = ANY(i.indkey), false) FROM pg_attribute a "
            "LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary "
            "WHERE a.attrelid = to_regclass(?) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            [name]).fetchall()
        return PgTable(name, {r[0]: r[1] for r in rows}, [r[0] for r in rows if r[2]])


class PgTable:
    """What an upsert needs to know of a table: its columns with their types, and its primary key."""

    def __init__(self, name: str, types: dict[str, str], pk: list[str]) -> None:
        self.name, self.types, self.pk = name, types, pk

    def upsert(self, con: PgConnection, frame: pd.DataFrame) -> int:
        """Insert the frame's rows (the columns the table has), replacing rows with the same primary key (the
        last of a key repeated in the frame wins, as row-by-row upserts would). A few rows go in as one
        parameterised ``INSERT``; more with one ``COPY`` (text format, each column formatted as a whole) into a
        temporary table and one ``INSERT ... SELECT``: several times faster than a parameter per value. The
        caller owns the transaction."""
        use = [c for c in frame.columns if c in self.types]
        payload = frame[use]
        if self.pk and all(k in use for k in self.pk):
            payload = payload.drop_duplicates(self.pk, keep="last")
        if payload.empty:
            return 0
        collist = ", ".join(f'"{c}"' for c in use)
        conflict = ""
        if self.pk:
            updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in use if c not in self.pk)
            keys = ", ".join(f'"{c}"' for c in self.pk)
            conflict = f" ON CONFLICT ({keys}) " + (f"DO UPDATE SET {updates}" if updates else "DO NOTHING")
        if len(payload) < COPY_FROM_ROWS:
            row = "(" + ", ".join("?" for _ in use) + ")"
            con.execute(f"INSERT INTO {self.name} ({collist}) VALUES " + ", ".join(row for _ in range(len(payload)))
                        + conflict, [v for r in payload.itertuples(index=False, name=None) for v in r])
            return len(payload)
        text = copy_text(payload, [self.types[c] for c in use])
        staging = f"_copy_{self.name}"  # per connection (a temporary table), with only the columns sent
        con.execute(f"DROP TABLE IF EXISTS {staging}")
        con.execute(f"CREATE TEMP TABLE {staging} AS SELECT {collist} FROM {self.name} WITH NO DATA")
        con.copy(f"COPY {staging} ({collist}) FROM STDIN", text)
        con.execute(f"INSERT INTO {self.name} ({collist}) SELECT {collist} FROM {staging}{conflict}")
        con.execute(f"DROP TABLE {staging}")
        return len(payload)


COPY_FROM_ROWS = 50
"""From this many rows an upsert goes through ``COPY`` (its temporary table costs a few statements)."""


_FLOAT_TYPES = ("double precision", "real", "numeric")
_INT_TYPES = ("integer", "bigint", "smallint")
_NULL = "\\N"


def copy_text(frame: pd.DataFrame, pg_types: Sequence[str]) -> str:
    """The frame as the body of a text-format ``COPY``: tab-separated, ``\\N`` for NULL (NaN, NaT, None),
    times in UTC, text escaped. A value the column cannot hold is refused with the column's name."""
    cols = [copy_column(frame.iloc[:, i], t) for i, t in enumerate(pg_types)]
    lines = cols[0].str.cat(cols[1:], sep="\t") if len(cols) > 1 else cols[0]
    return "\n".join(lines.tolist()) + "\n"


def copy_column(series: pd.Series, pg_type: str) -> pd.Series:
    """One column as COPY text, formatted as a whole column (a value at a time is the slow part of a bulk write)."""
    base = pg_type.split("(")[0].strip()
    name = series.name
    try:
        if base in _FLOAT_TYPES:
            values = series.astype("float64")
            return values.astype(str).where(values.notna(), _NULL)
        if base in _INT_TYPES:
            flags = series.dtype == bool or (series.dtype == object and series.map(type).eq(bool).any())
            values = series.astype("float64")
            whole = values.isna() | (values == values.round())
            if flags or not whole.all():
                bad = _pg_value(series[~whole].iloc[0]) if not whole.all() else "a true/false value"
                raise StorageError(f"column {name}: {bad!r} is not a whole number")
            return values.astype("Int64").astype(str).where(values.notna(), _NULL)
        if base.startswith("timestamp"):
            stamps = pd.to_datetime(series, utc=True).dt.tz_convert(None).to_numpy(dtype="datetime64[us]")
            zone = "+00" if base.endswith("with time zone") else ""
            text = pd.Series(np.datetime_as_string(stamps, unit="us"), index=series.index) + zone
            return text.where(~np.isnat(stamps), _NULL)
        if base == "date":
            days = pd.to_datetime(series)
            return days.dt.strftime("%Y-%m-%d").where(days.notna(), _NULL)
    except (ValueError, TypeError) as exc:
        raise StorageError(f"column {name}: cannot be stored as {pg_type}: {exc}") from exc
    if base == "boolean":
        return series.map(lambda v: _NULL if _missing(v) else "t" if bool(v) else "f")
    return series.map(lambda v: _NULL if _missing(v) else _escape(
        json.dumps(v) if isinstance(v, (dict, list)) else str(v)))


def _missing(v: Any) -> bool:
    return v is None or v is pd.NaT or v is pd.NA or (isinstance(v, float) and v != v)


def _escape(text: str) -> str:
    """Text-format COPY escapes: backslash, tab, newline, carriage return."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _pg_value(v: Any) -> Any:
    """A parameter psycopg can send: NaN/NaT as NULL, pandas/numpy scalars as Python ones."""
    if v is None or v is pd.NaT:
        return None
    if isinstance(v, (pd.Timestamp, np.datetime64)):
        return None if pd.isna(v) else pd.Timestamp(v).to_pydatetime()
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):  # numpy scalar
        v = v.item()
    if isinstance(v, float) and v != v:
        return None
    return v


class _FloatLoader(Loader):
    """``numeric`` (PostgreSQL's sum/avg of integers) as float, the type DuckDB's callers compute with."""

    def load(self, data: Any) -> float:
        return float(bytes(data).decode())
