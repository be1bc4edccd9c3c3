"""External assets the live sensors report on (their rows live in DuckDB; the sensors/jobs record events)."""

import dagster as dg

spike_events = dg.AssetSpec(
    "spike_events", group_name="live", kinds={"duckdb"},
    description="AEMO spike events per site (DuckDB `spike_events`): dispatch interval, when the watch saw the "
    "price, when the battery command was verified, restore attempts. Materialised by the spike watch sensor on "
    "every state change, with the latency in the metadata.")

automation_firings = dg.AssetSpec(
    "automation_firings", group_name="live", kinds={"duckdb"},
    description="Every automation firing with its reason and each action's outcome (DuckDB `automation_firings`).")
