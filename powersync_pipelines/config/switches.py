"""Per-site switches: whether the optimizer drives the battery, whether the planning cycle uploads TOU tariffs,
and what the planner minimises. Set in the sites file; a service call (``set_optimization``,
``set_auto_tou_sync``, ``set_cost_function``) overrides the file per site until changed again
(``control.switches``)."""

from __future__ import annotations

from typing import Literal

CostFunction = Literal["cost", "self_consumption"]
COST_FUNCTIONS: tuple[str, ...] = ("cost", "self_consumption")
SWITCH_NAMES: tuple[str, ...] = ("optimization", "auto_tou_sync", "cost_function")


def on_off(value: bool) -> str:
    """A boolean switch as the user writes it in the sites file and on the command line."""
    return "on" if value else "off"
