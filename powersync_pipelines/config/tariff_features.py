"""Typed settings of the tariff features: ``features.export_boost``, ``features.chip_mode`` and
``features.curtailment`` of a site (validated with the rest of the sites file, errors naming site and field).

Prices in these settings are in **cents (or pence) per kWh**, like the original's UI; the code converts to
currency/kWh once, in the properties. Windows are local wall-clock ``HH:MM`` [start, end); an end before the
start wraps past midnight.
"""

from __future__ import annotations

from datetime import time
from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from ._base import StrictModel

if TYPE_CHECKING:
    from .sites import SiteConfig

HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


def parse_hhmm(value: str) -> time:
    h, m = value.split(":")
    return time(int(h), int(m))


class LocalWindow(StrictModel):
    start: str = Field(pattern=HHMM)
    end: str = Field(pattern=HHMM)

    @model_validator(mode="after")
    def _not_empty(self) -> LocalWindow:
        if self.start == self.end:
            raise ValueError(f"window start and end are both {self.start}: an empty window (use enabled: false)")
        return self


class ExportBoostSettings(StrictModel):
    """Raise the export price the battery sees in the evening window so it exports then (SPEC §6)."""

    enabled: bool = True
    offset_c: float = Field(0.0, ge=-100, le=500)
    floor_c: float = Field(0.0, ge=-100, le=500)
    threshold_c: float = Field(0.0, ge=-200, le=2000)  # 0 = always active in the window
    start: str = Field("17:00", pattern=HHMM)
    end: str = Field("21:00", pattern=HHMM)

    @model_validator(mode="after")
    def _window(self) -> ExportBoostSettings:
        LocalWindow(start=self.start, end=self.end)
        return self

    @property
    def window(self) -> tuple[time, time]:
        return parse_hhmm(self.start), parse_hhmm(self.end)


class ChipModeSettings(StrictModel):
    """No exports overnight unless the export price is really worth it (SPEC §6)."""

    enabled: bool = True
    threshold_c: float = Field(30.0, ge=0, le=2000)
    start: str = Field("22:00", pattern=HHMM)
    end: str = Field("06:00", pattern=HHMM)

    @model_validator(mode="after")
    def _window(self) -> ChipModeSettings:
        LocalWindow(start=self.start, end=self.end)
        return self

    @property
    def window(self) -> tuple[time, time]:
        return parse_hhmm(self.start), parse_hhmm(self.end)


class CurtailmentSettings(StrictModel):
    """Stop exporting solar when exporting costs money, without flapping (SPEC §8).

    Curtail when the export price is <= ``trigger_c``; release only when it is >= ``release_c`` (hysteresis)
    and the curtailment has lasted ``min_hold_minutes``; a release is likewise held ``min_hold_minutes`` before
    the next curtail. ``dc`` acts on the battery's own export limit/rule, ``ac`` on the AC-coupled inverter.
    """

    enabled: bool = True
    trigger_c: float = Field(0.0, ge=-200, le=200)
    release_c: float = Field(1.0, ge=-200, le=200)
    min_hold_minutes: float = Field(10.0, ge=0, le=24 * 60)
    dc: bool = True
    ac: bool = True

    @model_validator(mode="after")
    def _hysteresis(self) -> CurtailmentSettings:
        if self.release_c < self.trigger_c:
            raise ValueError(
                f"release_c ({self.release_c}) must be >= trigger_c ({self.trigger_c}), or curtailment would flap"
            )
        return self

    @property
    def trigger(self) -> float:
        return self.trigger_c / 100.0

    @property
    def release(self) -> float:
        return self.release_c / 100.0


class TariffFeatures(StrictModel):
    spike_protection: bool
    spike_margin: float = 1.0  # $/kWh above the best sell price (behaviour.md §4.2)
    export_boost: ExportBoostSettings | None
    chip_mode: ChipModeSettings | None
    curtailment: CurtailmentSettings


def tariff_features(site: SiteConfig) -> TariffFeatures:
    """The tariff features in force for ``site``: a boost or chip-mode section that is switched off is None."""
    f = site.features
    return TariffFeatures(
        spike_protection=bool(f.spike_protection),
        export_boost=f.export_boost if f.export_boost.enabled else None,
        chip_mode=f.chip_mode if f.chip_mode.enabled else None,
        curtailment=f.curtailment,
    )
