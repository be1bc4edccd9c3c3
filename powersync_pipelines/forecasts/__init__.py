"""Solar, load and price-beyond-horizon forecasts (plain functions of data; no Dagster)."""
