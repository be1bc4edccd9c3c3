"""One writer per device: an in-process re-entrant lock plus a file lock shared by every process.

Why both: the Dagster runs, the CLI and the sensors are separate processes; threads in one process share the
file lock object, so the RLock serialises them first.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from filelock import FileLock, Timeout

from ..paths import powersync_home


class DeviceBusy(RuntimeError):
    """Another writer holds the device."""


_locks: dict[tuple[str, str], tuple[threading.RLock, FileLock]] = {}
_guard = threading.Lock()


def _pair(key: str) -> tuple[threading.RLock, FileLock]:
    folder = powersync_home() / "locks"
    with _guard:
        if (str(folder), key) not in _locks:
            folder.mkdir(parents=True, exist_ok=True)
            safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", key)
            lock = FileLock(str(folder / f"device-{safe}.lock"), thread_local=False)
            _locks[(str(folder), key)] = (threading.RLock(), lock)
        return _locks[(str(folder), key)]


@contextmanager
def device_writer(key: str, timeout_s: float = 60.0) -> Iterator[None]:
    """Hold the single-writer lock of device ``key`` (e.g. ``sungrow_sh@127.0.0.1:502/1``)."""
    rlock, flock = _pair(key)
    if not rlock.acquire(timeout=timeout_s):
        raise DeviceBusy(f"device {key}: another writer in this process held it for over {timeout_s:.0f} s")
    try:
        try:
            flock.acquire(timeout=timeout_s)
        except Timeout:
            raise DeviceBusy(f"device {key}: another process holds its writer lock ({flock.lock_file})") from None
        try:
            yield
        finally:
            flock.release()
    finally:
        rlock.release()
