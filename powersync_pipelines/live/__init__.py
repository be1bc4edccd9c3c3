"""Live operation: the AEMO spike watch, automations, the early re-optimisation trigger and notifications.

Pure Python (no dagster import); ``defs/live/`` wires these into sensors and jobs.
"""
