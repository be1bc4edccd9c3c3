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
    target = home / "dagster.yaml"
    if not target.exists():
        # written under a temporary name and renamed: a command starting alongside never reads half a file
        tmp = home / f".dagster.yaml.{os.getpid()}.tmp"
        tmp.write_text((REPO_ROOT / "dagster.yaml").read_text())
        os.replace(tmp, target)
    return home
