"""PowerSync Pipelines: battery planning and control against dynamic electricity prices, as Dagster assets."""

__version__ = "0.1.0"
