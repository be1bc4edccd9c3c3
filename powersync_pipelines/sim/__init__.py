"""Simulated devices and test peers."""
