"""Saturate every core with busy processes, to prove a result does not depend on how busy the machine is.

``busy_cores()`` starts ``os.cpu_count()`` processes that spin at the test's own priority and stops them on
exit. It waits until every one of them is running (an event each sets) before yielding, so the code under
test really competes for the cores; nothing here measures or asserts on time.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterator
from contextlib import contextmanager

START_TIMEOUT_S = 60.0  # generous: spawning a Python process on a loaded 2-core machine takes a while


def _spin(started) -> None:  # noqa: ANN001 - a multiprocessing Event
    started.set()
    x = 0
    while True:
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF


@contextmanager
def busy_cores(n: int | None = None) -> Iterator[list[mp.process.BaseProcess]]:
    """Run ``n`` (default: every core) spinning processes for the duration of the block."""
    ctx = mp.get_context("spawn")  # no fork of a process that may hold HiGHS or DuckDB threads
    procs: list[mp.process.BaseProcess] = []
    try:
        for _ in range(n or os.cpu_count() or 1):
            started = ctx.Event()
            p = ctx.Process(target=_spin, args=(started,), daemon=True, name="busy-core")
            p.start()
            procs.append(p)
            if not started.wait(START_TIMEOUT_S):
                raise RuntimeError("a busy-core process did not start")
        yield procs
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join()
