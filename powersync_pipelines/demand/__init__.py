"""Demand charges (SPEC §11): the month's peak import in the tariff's window, and the optimizer input for it."""

from .peaks import (
    DemandError,
    avoided_demand_cost,
    demand_charge_for,
    interval_averages,
    month_peak_so_far,
    month_peaks,
    read_interval_imports,
    record_month_peak,
    site_demand_charge,
    strategy_demand_report,
    window_mask,
)

__all__ = [
    "DemandError",
    "avoided_demand_cost",
    "demand_charge_for",
    "interval_averages",
    "month_peak_so_far",
    "month_peaks",
    "read_interval_imports",
    "record_month_peak",
    "site_demand_charge",
    "strategy_demand_report",
    "window_mask",
]
