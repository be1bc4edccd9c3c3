"""Where state and shipped data live.

State (DuckDB file, Dagster home) lives under ``$POWERSYNC_HOME`` (default ``./var``) so that a demo run
never writes into the source tree and a test can point everything at a temp directory.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
DEFAULT_SITES_FILE = DATA_DIR / "sites.yaml"
SHARED_REAL_DATA = REPO_ROOT.parent / "shared" / "data" / "real"
DATABASE_URL_ENV = "POWERSYNC_DATABASE_URL"
# The same database as SQLAlchemy must be told to reach it for dagster-postgres: SQLAlchemy 2.1 maps a bare
# postgresql:// to psycopg 3, whose server-side parameters dagster-postgres's ``NOTIFY run_events, :id`` cannot
# use, so Dagster gets the URL with the psycopg2 driver named. Derived from DATABASE_URL_ENV by
# ``write_instance_config`` in every process that prepares the instance (its children inherit it).
DAGSTER_PG_URL_ENV = "POWERSYNC_DAGSTER_POSTGRES_URL"

# Appended to the instance's dagster.yaml when the history is on PostgreSQL: Dagster's runs, event log and
# schedules go to the same database; the URL is read from the environment when the instance starts, so the
# file (and the UI's instance page) never holds a password.
POSTGRES_STORAGE_BLOCK = f"""
# Written because ${DATABASE_URL_ENV} is a postgresql:// URL: runs, event log and schedules in that database.
storage:
  postgres:
    postgres_url:
      env: {DAGSTER_PG_URL_ENV}
"""


def powersync_home() -> Path:
    """The state directory; created on first use."""
    home = Path(os.environ.get("POWERSYNC_HOME") or (REPO_ROOT / "var")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def duckdb_path() -> Path:
    """The one DuckDB history file (``$POWERSYNC_DUCKDB`` overrides)."""
    override = os.environ.get("POWERSYNC_DUCKDB")
    return Path(override).resolve() if override else powersync_home() / "powersync.duckdb"


def sites_file(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--sites`` beats ``$POWERSYNC_SITES`` beats the shipped demo file."""
    chosen = explicit or os.environ.get("POWERSYNC_SITES") or DEFAULT_SITES_FILE
    return Path(chosen).resolve()


def resolve_data_path(path: str | os.PathLike[str], base: Path | None = None) -> Path:
    """Resolve a path from a sites file: absolute, relative to the sites file's folder, or to the repo root."""
    p = Path(path)
    if p.is_absolute():
        return p
    for root in (base, REPO_ROOT):
        if root is not None and (root / p).exists():
            return (root / p).resolve()
    return (REPO_ROOT / p).resolve()


def shared_real_data() -> Path | None:
    """``../shared/data/real`` when present (CI and dev machines have it); ``$POWERSYNC_SHARED_DATA`` overrides."""
    override = os.environ.get("POWERSYNC_SHARED_DATA")
    p = Path(override) if override else SHARED_REAL_DATA
    return p if p.exists() else None


def ensure_dagster_home() -> Path:
    """``$DAGSTER_HOME`` (default ``$POWERSYNC_HOME/dagster``), created, with the repo's ``dagster.yaml`` in it.

    Dagster reads instance config only from ``$DAGSTER_HOME`` and refuses a missing folder; the CLI commands
    set it up the same way the Makefile does, so ``powersync demo`` / ``ui`` work when called directly.
    """
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(powersync_home() / "dagster")))
    home.mkdir(parents=True, exist_ok=True)
    write_instance_config(home)
    return home


def instance_config_text() -> str:
    """The instance's ``dagster.yaml``: the repo's file, plus Dagster storage on PostgreSQL when the history is
    there (``$POWERSYNC_DATABASE_URL`` is a ``postgresql://`` URL); else Dagster's default SQLite files."""
    base = (REPO_ROOT / "dagster.yaml").read_text()
    return base + POSTGRES_STORAGE_BLOCK if _postgres_url() else base


def _postgres_url() -> str | None:
    url = (os.environ.get(DATABASE_URL_ENV) or "").strip()
    return url if url.startswith(("postgresql://", "postgres://")) else None


def write_instance_config(home: Path, force: bool = False) -> Path:
    """Write ``home/dagster.yaml`` when missing, when ``force``, or when it is one this function wrote for the
    other storage choice (so setting or clearing ``$POWERSYNC_DATABASE_URL`` takes effect); a hand-edited file
    is left alone. Also sets ``$POWERSYNC_DAGSTER_POSTGRES_URL`` for this process and its children."""
    url = _postgres_url()
    if url:
        os.environ[DAGSTER_PG_URL_ENV] = "postgresql+psycopg2://" + url.split("://", 1)[1]
    target = home / "dagster.yaml"
    text = instance_config_text()
    base = (REPO_ROOT / "dagster.yaml").read_text()
    current = target.read_text() if target.exists() else None
    if force or current is None or (current != text and current in (base, base + POSTGRES_STORAGE_BLOCK)):
        # written under a temporary name and renamed: a command starting alongside never reads half a file
        tmp = home / f".dagster.yaml.{os.getpid()}.tmp"
        tmp.write_text(text)
        os.replace(tmp, target)
    return target
