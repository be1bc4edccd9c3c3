"""Simulated devices and test peers on loopback: battery simulators (pymodbus servers and a Fleet-API-like HTTP
server), the Sigenergy cloud, AC inverter peers, a NEMWEB-shaped feed, and the real Dagster daemon harness.

The demo, ``powersync ui``, ``powersync simulate``, the tests and the benchmarks use them; nothing in the product
imports them."""
