"""TOU tariff payloads (Tesla, Sigenergy), the price adjustments they carry, sync decisions and curtailment.

Pure domain code: no dagster import here; ``defs/`` wires these into assets.
"""
