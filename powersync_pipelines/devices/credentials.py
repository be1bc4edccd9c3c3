"""Cloud log-ins that outlive a process: tokens kept in owner-only files under ``$POWERSYNC_HOME/credentials``.

Why: every Dagster run is a new process. Without a shared place for tokens each run would log in again
(Sigenergy: a password login every 5 minutes) and, for Tesla, whose refresh tokens are single use, two
processes refreshing with the same token would race and one would lose the account's log-in. Why files and
not the sites file or DuckDB: the sites file is configuration (often in git) and the history file is meant
to be queried, copied and shared; tokens must travel with neither.

A file is JSON, mode 0600 in a 0700 folder, replaced atomically (write a temporary file, fsync, rename) so a
crash never leaves half a token; ``locked()`` holds a cross-process file lock for read-refresh-write. The
object's repr shows the path only, never the contents.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock

from ..paths import powersync_home

log = logging.getLogger(__name__)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}$")


def fingerprint(secret: str, length: int = 16) -> str:
    """A short SHA-256 of a secret: enough to tell two secrets apart, nothing to recover one from."""
    return hashlib.sha256(secret.encode()).hexdigest()[:length]


class CredentialFile:
    """One log-in's tokens (a JSON object) in ``<home>/credentials/<name>.json``."""

    def __init__(self, name: str, home: Path | None = None) -> None:
        if not _NAME.match(name):
            raise ValueError(f"credential name {name!r} must be letters, digits, '_', '.', '-'")
        folder = (home or powersync_home()) / "credentials"
        self.path = folder / f"{name}.json"
        self._lock = FileLock(str(self.path) + ".lock", timeout=60)

    def __repr__(self) -> str:
        return f"CredentialFile({str(self.path)!r})"

    @contextmanager
    def locked(self) -> Iterator[CredentialFile]:
        """Hold the cross-process lock (re-entrant in one process) while reading, refreshing and writing."""
        self._folder()
        with self._lock:
            yield self

    def _folder(self) -> None:
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        if stat.S_IMODE(folder.stat().st_mode) != 0o700:
            folder.chmod(0o700)

    def read(self) -> dict[str, Any]:
        """The stored object, or ``{}`` when there is none or it is unreadable (a log-in then starts afresh)."""
        try:
            mode = stat.S_IMODE(self.path.stat().st_mode)
        except FileNotFoundError:
            return {}
        if mode & 0o077:
            log.warning("%s was readable by others (mode %o); set to 0600", self.path, mode)
            self.path.chmod(0o600)
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            log.warning("%s is unreadable (%s); the log-in starts afresh", self.path, type(exc).__name__)
            return {}
        return data if isinstance(data, dict) else {}

    def write(self, data: dict[str, Any]) -> None:
        """Replace the stored object atomically; the file is created 0600 before any byte is written."""
        self._folder()
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
