"""Site partitions: one static partition per site in the sites file (read at definitions load).

The planning assets are partitioned by site while the fleet is small (each site's history of materializations in
the UI). Dagster writes two events per partition and asset (planned, materialized), each a storage round trip
with the run's whole metadata: at 1,000 sites that is 16,000 event writes per cycle, more than the planning
itself. Above ``POWERSYNC_SITE_PARTITIONS_MAX`` sites (default 20) the planning assets are therefore not
partitioned: one run plans the whole fleet, each stage writes one materialization with the fleet's figures,
and each site's results are in DuckDB. The curtailment asset keeps its per-site partitions (runs per site).
"""

from __future__ import annotations

import os

import dagster as dg

from ...config import load_sites

SITE_PARTITIONS_MAX = 20


def site_ids() -> list[str]:
    return [s.id for s in load_sites().sites]


def site_partitions_max() -> int:
    raw = os.environ.get("POWERSYNC_SITE_PARTITIONS_MAX", "")
    try:
        return int(raw) if raw else SITE_PARTITIONS_MAX
    except ValueError:
        raise ValueError(f"POWERSYNC_SITE_PARTITIONS_MAX must be a whole number, not {raw!r}") from None


site_partitions = dg.StaticPartitionsDefinition(site_ids())
# None: the fleet is planned as one unpartitioned run (see the module docstring)
planning_partitions: dg.StaticPartitionsDefinition | None = (
    site_partitions if len(site_partitions.get_partition_keys()) <= site_partitions_max() else None)


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
