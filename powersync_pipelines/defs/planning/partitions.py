"""Site partitions: one static partition per site in the sites file (read at definitions load).

The planning assets are partitioned by site while the fleet is small (each site's history of materializations in
the UI). Dagster writes two events per partition and asset (planned, materialized), each a storage round trip
with the run's whole metadata: at 1,000 sites that is 16,000 event writes per cycle, more than the planning
itself. Above ``POWERSYNC_SITE_PARTITIONS_MAX`` sites (default 20) the planning assets are therefore not
partitioned: one run plans the whole fleet, each stage writes one materialization with the fleet's figures,
and each site's results are in DuckDB. The curtailment asset keeps its per-site partitions (runs per site).

With ``POWERSYNC_SHARDS=N`` (N > 1) a fleet above that threshold is partitioned by shard instead: N static keys
(``shard-01-of-16`` ...), each site in exactly one shard by the crc32 of its id (``control.fleet.shard_of``), and
a run plans only its shard's sites. The 5-minute schedule asks for one run per shard; Dagster's run queue and the
``powersync/planning_shard`` tag limit in ``dagster.yaml`` decide how many plan at once.
"""

from __future__ import annotations

import os

import dagster as dg

from ...config import load_sites
from ...control.fleet import shard_count, shard_keys, sites_of_shard

SITE_PARTITIONS_MAX = 20


def site_ids() -> list[str]:
    return [s.id for s in load_sites().sites]


def site_partitions_max() -> int:
    raw = os.environ.get("POWERSYNC_SITE_PARTITIONS_MAX", "")
    try:
        return int(raw) if raw else SITE_PARTITIONS_MAX
    except ValueError:
        raise ValueError(f"POWERSYNC_SITE_PARTITIONS_MAX must be a whole number, not {raw!r}") from None


SHARD_TAG = "powersync/planning_shard"
"""Run tag of a shard run (its value: the shard key); ``dagster.yaml`` bounds the runs carrying it."""

site_partitions = dg.StaticPartitionsDefinition(site_ids())
SHARDS = shard_count()
shard_partitions: dg.StaticPartitionsDefinition | None = (
    dg.StaticPartitionsDefinition(shard_keys(SHARDS)) if SHARDS > 1 else None)
# None: the fleet is planned as one unpartitioned run (see the module docstring)
planning_partitions: dg.StaticPartitionsDefinition | None = (
    site_partitions if len(site_partitions.get_partition_keys()) <= site_partitions_max() else shard_partitions)
sharded = planning_partitions is not None and planning_partitions is shard_partitions


def run_site_ids(partition_keys: list[str], all_site_ids: list[str]) -> list[str]:
    """The sites a run plans: its site partitions, or the sites of its shard partitions (in sites-file order)."""
    if not sharded:
        return list(partition_keys)
    keys = set(partition_keys)
    return [s for key in shard_keys(SHARDS) if key in keys for s in sites_of_shard(key, all_site_ids)]


def shard_run_tags(key: str) -> dict[str, str]:
    """Tags of one shard's run: its shard key under ``SHARD_TAG`` (bounded by ``dagster.yaml``)."""
    return {SHARD_TAG: key}


def all_sites_tags() -> dict[str, str]:
    """Run tags that make one run cover every site partition (one run for all sites, not one per site); none
    when the planning assets are not partitioned (the run covers the fleet anyway)."""
    if planning_partitions is None:
        return {}
    keys = planning_partitions.get_partition_keys()
    return {
        "dagster/asset_partition_range_start": keys[0],
        "dagster/asset_partition_range_end": keys[-1],
    }
