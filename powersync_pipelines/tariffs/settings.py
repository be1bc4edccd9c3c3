"""Typed settings for the tariff features the sites file keeps as free-form dicts for now.

``features.export_boost``, ``features.chip_mode`` and ``features.curtailment`` are parsed here, with errors
that name the site and the field. Prices in these settings are in **cents (or pence) per kWh**, like the
original's UI; the code converts to currency/kWh once, in the properties. Windows are local wall-clock
``HH:MM`` [start, end); an end before the start wraps past midnight.
"""

from __future__ import annotations

from datetime import time
from typing import Any

from pydantic import BaseModel, Field, ValidationError, model_validator

from ..config import SiteConfig
from ..config._base import StrictModel

HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


class TariffSettingsError(ValueError):
    """A feature section that cannot be used; the message names site and field."""


class _Strict(StrictModel):
    """The sites file's rules: unknown keys, NaN/inf and true/false for a number are errors."""


def parse_hhmm(value: str) -> time:
    h, m = value.split(":")
    return time(int(h), int(m))


class LocalWindow(_Strict):
    start: str = Field(pattern=HHMM)
    end: str = Field(pattern=HHMM)

    @model_validator(mode="after")
    def _not_empty(self) -> LocalWindow:
        if self.start == self.end:
            raise ValueError(f"window start and end are both {self.start}: an empty window (use enabled: false)")
        return self


class ExportBoostSettings(_Strict):
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


class ChipModeSettings(_Strict):
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


class CurtailmentSettings(_Strict):
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


class TariffFeatures(_Strict):
    spike_protection: bool
    spike_margin: float = 1.0  # $/kWh above the best sell price (behaviour.md §4.2)
    export_boost: ExportBoostSettings | None
    chip_mode: ChipModeSettings | None
    curtailment: CurtailmentSettings


def _parse(model: type[_Strict], raw: Any, site_id: str, field: str, default_enabled: bool) -> Any:
    if raw is None:
        raw = {}
    if isinstance(raw, _Strict):
        return raw
    if isinstance(raw, BaseModel):
        raw = raw.model_dump()
    if not isinstance(raw, dict):
        raise TariffSettingsError(f"site {site_id!r}: features.{field}: expected a mapping, got {type(raw).__name__}")
    data = {"enabled": default_enabled, **raw}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        msgs = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in e["loc"])
            what = "unknown key" if e["type"] == "extra_forbidden" else e["msg"].removeprefix("Value error, ")
            msgs.append(f"features.{field}{'.' + loc if loc else ''}: {what}")
        raise TariffSettingsError(f"site {site_id!r}: " + "; ".join(msgs)) from None


def tariff_features(site: SiteConfig) -> TariffFeatures:
    """Typed feature settings for ``site``. An absent/empty boost or chip section means off; curtailment is on
    by default (every site with solar must stop paying to export)."""
    f = site.features
    boost = _parse(ExportBoostSettings, f.export_boost, site.id, "export_boost", bool(f.export_boost))
    chip = _parse(ChipModeSettings, f.chip_mode, site.id, "chip_mode", bool(f.chip_mode))
    curtail = _parse(CurtailmentSettings, f.curtailment, site.id, "curtailment", True)
    return TariffFeatures(
        spike_protection=bool(f.spike_protection),
        export_boost=boost if boost.enabled else None,
        chip_mode=chip if chip.enabled else None,
        curtailment=curtail,
    )
