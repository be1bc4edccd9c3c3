"""Site partitions: one static partition per site in the sites file (read at definitions load)."""

from __future__ import annotations

import dagster as dg

from ...config import load_sites


def site_ids() -> list[str]:
    return [s.id for s in load_sites().sites]


site_partitions = dg.StaticPartitionsDefinition(site_ids())


def all_sites_tags() -> dict[str, str]:
    """Run tags that make one run cover every site partition (one run for all sites, not one per site)."""
    keys = site_partitions.get_partition_keys()
    return {
        "dagster/asset_partition_range_start": keys[0],
        "dagster/asset_partition_range_end": keys[-1],
    }
