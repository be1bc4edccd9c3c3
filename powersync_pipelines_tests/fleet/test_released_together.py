"""``sim.fleet.released_together``: children load at their own pace, and none starts its work before the release."""

from __future__ import annotations

import os
import sys

import pytest

from powersync_pipelines.sim.fleet import released_together

# loads (a child-specific amount of work), says ready, waits for the release, reports when it started
CHILD = """
import sys, time
sum(range(int(sys.argv[1])))
print("ready", flush=True)
sys.stdin.readline()
print(time.monotonic())
print("done " + sys.argv[1], flush=True)
"""


def test_every_child_starts_after_the_release_and_its_lines_come_back() -> None:
    released, children = released_together([[sys.executable, "-c", CHILD, str(n)] for n in (10, 3_000_000)],
                                           dict(os.environ))
    for n, c in zip((10, 3_000_000), children, strict=True):
        assert c.returncode == 0, c.stderr
        started, done = c.lines
        assert float(started) >= released  # the machine's monotonic clock is shared by the processes
        assert done == f"done {n}"


def test_a_child_that_dies_before_it_is_ready_stops_them_all_with_its_error() -> None:
    dying = [sys.executable, "-c", "import sys; sys.exit('no sites file here')"]
    with pytest.raises(RuntimeError, match="exited \\(code 1\\) before it was ready: no sites file here"):
        released_together([[sys.executable, "-c", CHILD, "10"], dying], dict(os.environ))
