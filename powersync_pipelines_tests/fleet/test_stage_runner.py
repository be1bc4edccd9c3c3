"""One planning stage over many sites (control.fleet): a site's error or overrun is that site's failure, the
others go on; parallelism stays within its bound; price frames are fetched once per provider section."""

from __future__ import annotations

import threading

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powersync_pipelines.config import SiteConfig
from powersync_pipelines.control.fleet import SharedPrices, run_sites
from powersync_pipelines.prices.replay import default_replay_now


def test_a_failing_site_is_recorded_and_the_others_run() -> None:
    done: list[str] = []

    def step(site_id: str, item: int) -> None:
        if item == 2:
            raise ConnectionError("battery unreachable")
        done.append(site_id)

    for workers in (1, 4):
        done.clear()
        report = run_sites("stage", [(f"s{i}", i) for i in range(5)], step, workers=workers)
        assert sorted(done) == ["s0", "s1", "s3", "s4"]
        assert [(o.site_id, o.error) for o in report.failures] == [("s2", "ConnectionError: battery unreachable")]
        assert report.summary()["sites"] == 5 and report.summary()["failed"] == 1


def test_a_site_that_never_finishes_is_a_failure_and_does_not_hold_the_stage() -> None:
    release = threading.Event()
    done: list[str] = []

    def step(site_id: str, item: int) -> None:
        if site_id == "stuck":
            release.wait(60)  # a battery that never answers (its driver's own timeout is longer than the stage's)
            return
        done.append(site_id)

    try:
        report = run_sites("battery_commands", [("stuck", 0)] + [(f"s{i}", i) for i in range(6)], step,
                           workers=2, timeout_s=0.5)
    finally:
        release.set()
    assert sorted(done) == [f"s{i}" for i in range(6)]
    (failed,) = report.failures
    assert failed.site_id == "stuck" and failed.error.startswith("SiteTimeout")


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 30), workers=st.integers(1, 6))
def test_parallelism_never_exceeds_its_bound(n: int, workers: int) -> None:
    lock = threading.Lock()
    now, peak = [0], [0]

    def step(site_id: str, item: int) -> None:
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        threading.Event().wait(0.001)
        with lock:
            now[0] -= 1

    report = run_sites("stage", [(f"s{i}", i) for i in range(n)], step, workers=workers)
    assert 1 <= peak[0] <= workers
    assert sorted(o.site_id for o in report.outcomes) == sorted(f"s{i}" for i in range(n))
    assert not report.failures


def test_sites_of_one_provider_section_share_one_fetch(demo_site: SiteConfig) -> None:
    now = default_replay_now(demo_site)
    sites = [demo_site.model_copy(update={"id": f"home{i}"}) for i in range(4)]
    other_retail = demo_site.provider.retail.model_copy(update={"network_adder_per_kwh": 0.2})
    other = demo_site.model_copy(update={"id": "other", "provider": demo_site.provider.model_copy(
        update={"retail": other_retail})})
    shared = SharedPrices()
    frames = [shared(s, now) for s in [*sites, other]]
    assert (shared.fetches, shared.shared) == (2, 3)
    pd.testing.assert_frame_equal(frames[0], frames[3])
    assert not frames[4]["import_price"].equals(frames[0]["import_price"])  # its own retail mapping
    frames[0].loc[:, "import_price"] = -1.0  # each site gets its own copy: one site's edits reach no other
    assert (frames[1]["import_price"] != -1.0).all()


def test_a_failed_fetch_is_not_shared(demo_site: SiteConfig) -> None:
    outside = pd.Timestamp("2030-01-01T00:00:00Z")  # beyond the replay file: the provider fails
    shared = SharedPrices()
    for _ in range(2):
        with pytest.raises(Exception, match="outside the replay file"):
            shared(demo_site, outside)
    assert shared.fetches == 0
