"""The crash and concurrency rows of the fault campaign (``make reliability``): kill -9 at seeded-random points of
a demo in a loop, each followed by a demo on the same home, and demos started together on fresh homes. Every
case must end ``recovered``/``ok``: nothing lost or stored twice, no saved state stuck, nothing wedged. The fast
subset in ``make test`` is ``test_kill_while_holding_a_slot`` (one kill at the worst point)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .campaign import concurrent_case, kill_loop

pytestmark = pytest.mark.reliability


def test_kill_9_at_random_points_never_loses_a_record_or_wedges_the_next_run(tmp_path: Path) -> None:
    outcomes = kill_loop(tmp_path, kills=5, seed=31)
    assert [o.outcome for o in outcomes] == ["recovered"] * 5, [(o.outcome, o.detail, o.notes) for o in outcomes]


def test_three_demos_started_together_on_a_fresh_home_all_succeed(tmp_path: Path) -> None:
    outcome = concurrent_case(tmp_path, n=3, index=0)
    assert outcome.outcome == "ok", outcome.detail
