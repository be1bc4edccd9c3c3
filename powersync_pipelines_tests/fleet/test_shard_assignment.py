"""Sites are sharded by the crc32 of their id: every site in exactly one shard, the same shard in every process,
and shard keys that name themselves (``shard-03-of-16``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powersync_pipelines.control.fleet import shard_count, shard_key, shard_keys, shard_of, sites_of_shard

site_ids = st.lists(st.text(min_size=1, max_size=24), min_size=0, max_size=200, unique=True)


@settings(max_examples=200, deadline=None)
@given(ids=site_ids, shards=st.integers(min_value=1, max_value=64))
def test_every_site_is_in_exactly_one_shard(ids: list[str], shards: int) -> None:
    keys = shard_keys(shards)
    assert len(set(keys)) == shards and keys == sorted(keys)
    planned = [s for key in keys for s in sites_of_shard(key, ids)]
    assert sorted(planned) == sorted(ids)  # nothing lost, nothing doubled
    for i, key in enumerate(keys):
        assert all(shard_of(s, shards) == i for s in sites_of_shard(key, ids))


@settings(max_examples=100, deadline=None)
@given(ids=site_ids, extra=st.text(min_size=1, max_size=24), shards=st.integers(min_value=1, max_value=64))
def test_adding_a_site_moves_no_other_site(ids: list[str], extra: str, shards: int) -> None:
    before = {s: shard_of(s, shards) for s in ids}
    after = {s: shard_of(s, shards) for s in [*ids, extra]}
    assert all(after[s] == shard for s, shard in before.items())


def test_the_shard_of_a_site_is_the_same_in_another_process() -> None:
    """Python's str hash is salted per process; the shard must not be (the schedule and each run agree)."""
    ids = [f"site{i:05d}" for i in range(50)] + ["demo", "maison-éa", "北京"]
    here = [shard_of(s, 16) for s in ids]
    code = ("import sys, json; from powersync_pipelines.control.fleet import shard_of; "
            f"print(json.dumps([shard_of(s, 16) for s in {ids!r}]))")
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"})
    assert json.loads(there.stdout) == here
    assert len(set(here)) > 8  # crc32 spreads the ids over the shards


def test_shard_keys_are_named_and_zero_padded() -> None:
    assert shard_key(2, 16) == "shard-03-of-16"
    assert shard_keys(3) == ["shard-01-of-03", "shard-02-of-03", "shard-03-of-03"]
    assert shard_key(41, 128) == "shard-042-of-128"


@pytest.mark.parametrize("key", ["shard-04-of-03", "shard-1-of-3", "site00001", "shard-00-of-03"])
def test_a_key_that_is_not_a_shard_is_a_clear_error(key: str) -> None:
    with pytest.raises(ValueError, match="not a shard partition key"):
        sites_of_shard(key, ["a", "b"])


@pytest.mark.parametrize("raw", ["0", "-2", "four", "1.5"])
def test_a_bad_shard_count_is_a_clear_error(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERSYNC_SHARDS", raw)
    with pytest.raises(ValueError, match="POWERSYNC_SHARDS must be a whole number of at least 1"):
        shard_count()


def test_no_setting_is_one_shard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POWERSYNC_SHARDS", raising=False)
    assert shard_count() == 1


SCHEDULE_PROBE = """
import datetime, json
import dagster as dg
from powersync_pipelines.defs.planning.jobs import reoptimize_every_5_minutes, reoptimize_job
ctx = dg.build_schedule_context(scheduled_execution_time=datetime.datetime(2026, 1, 1, 0, 5))
reqs = reoptimize_every_5_minutes(ctx)
reqs = reqs if isinstance(reqs, list) else [reqs]
print(json.dumps({"requests": [{"run_key": r.run_key, "partition_key": r.partition_key, "tags": r.tags}
                               for r in reqs], "job_tags": dict(reoptimize_job.tags or {})}))
"""


def _schedule_requests(tmp_path, extra_env: dict[str, str]) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERSYNC_", "DAGSTER_"))}
    env.update({"POWERSYNC_HOME": str(tmp_path / "home"), "DAGSTER_HOME": str(tmp_path / "dh"), **extra_env})
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", SCHEDULE_PROBE], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_schedule_requests_one_run_per_shard_above_the_partition_threshold(tmp_path) -> None:
    got = _schedule_requests(tmp_path, {"POWERSYNC_SHARDS": "3", "POWERSYNC_SITE_PARTITIONS_MAX": "0"})
    assert [r["partition_key"] for r in got["requests"]] == shard_keys(3)
    assert [r["run_key"] for r in got["requests"]] == [f"2026-01-01T00:05:00/{k}" for k in shard_keys(3)]
    assert [r["tags"] for r in got["requests"]] == [{"powersync/planning_shard": k} for k in shard_keys(3)]
    assert got["job_tags"] == {"powersync/duckdb_writer": "true"}  # DuckDB: still one writing run at a time


def test_one_shard_keeps_one_run_for_the_fleet(tmp_path) -> None:
    got = _schedule_requests(tmp_path, {"POWERSYNC_SITE_PARTITIONS_MAX": "0"})
    assert got["requests"] == [{"run_key": "2026-01-01T00:05:00", "partition_key": None, "tags": {}}]
