"""``features.demand_charge``: a network demand tariff (SPEC §11).

The bill adds ``price_per_kw_month`` x the month's highest average import over one measurement interval
(30 min by default) inside the window: local times on the given weekdays. ``end`` is exclusive; an ``end``
earlier than ``start`` runs past midnight (the weekday is the one the window started on).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from ._base import StrictModel
from .ev import check_hhmm

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class DemandChargeConfig(StrictModel):
    enabled: bool = True
    start: str = "15:00"  # local
    end: str = "21:00"  # local, exclusive
    weekdays: list[Weekday] = Field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"], min_length=1)
    price_per_kw_month: float = Field(ge=0, le=1000)
    interval_minutes: Literal[15, 30, 60] = 30

    _times = field_validator("start", "end")(classmethod(lambda cls, v: check_hhmm(v)))

    @field_validator("end")
    @classmethod
    def _not_empty(cls, v: str, info) -> str:  # noqa: ANN001 - pydantic's ValidationInfo
        if info.data.get("start") == v:
            raise ValueError("end equals start: the window is empty")
        return v

    def weekday_numbers(self) -> set[int]:
        """Monday = 0, as ``datetime.weekday()``."""
        return {WEEKDAYS.index(d) for d in self.weekdays}
