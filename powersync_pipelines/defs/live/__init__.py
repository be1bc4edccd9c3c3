"""Live operation in Dagster: the 1-minute AEMO spike watch, automations and the early re-optimisation trigger."""
