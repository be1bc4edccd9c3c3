"""Who may command a device, and who wins when two want the same control.

Highest first: ``safety`` (the driver's own rules and the safe mode after a failed write) > ``manual`` (the owner
asked, through a service, the UI or Home Assistant) > ``spike`` (the AEMO spike watch) > ``automation`` (the
owner's rules) > ``curtailment`` (negative export prices) > ``ev`` (the car's charging plan) > ``optimizer``
(the 5-minute plan). A request of a lower owner while a higher one holds the control is *yielded*.

A *control* is one thing a device lets you set, held by one owner at a time:

* ``battery``: the battery's operating mode (forced charge/discharge, hold, self-consumption, a Tesla tariff);
* ``battery_export``: the battery system's export limit (DC curtailment, the Sungrow export limit);
* ``battery_settings``: reserve, charge/discharge rates, Tesla operation mode and grid rules (written once,
  never leased);
* ``inverter``: an AC-coupled solar inverter's export limit;
* ``ev_charger``: the EV charger's current limit.
"""

from __future__ import annotations

from typing import Literal, get_args

Owner = Literal["safety", "manual", "spike", "automation", "curtailment", "ev", "optimizer"]
Control = Literal["battery", "battery_export", "battery_settings", "inverter", "ev_charger"]

OWNERS: tuple[Owner, ...] = get_args(Owner)
CONTROLS: tuple[Control, ...] = get_args(Control)
HOLDERS: tuple[str, ...] = (*OWNERS, "none")  # what `powersync status` may report
PRIORITY: dict[str, int] = {owner: len(OWNERS) - rank for rank, owner in enumerate(OWNERS)}


def outranks(a: str, b: str) -> bool:
    """True when owner ``a`` may take a control that owner ``b`` holds (a strictly higher priority)."""
    return PRIORITY[a] > PRIORITY[b]


def check_owner(owner: str) -> Owner:
    if owner not in PRIORITY:
        raise ValueError(f"unknown owner {owner!r}; owners: {', '.join(OWNERS)}")
    return owner  # type: ignore[return-value]


def check_control(control: str) -> Control:
    if control not in CONTROLS:
        raise ValueError(f"unknown control {control!r}; controls: {', '.join(CONTROLS)}")
    return control  # type: ignore[return-value]
