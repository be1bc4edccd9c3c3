"""Optional site sections: solar, load, grid limits, features, AC inverter, automations (EV: ``config/ev.py``)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from ._base import StrictModel
from .demand import DemandChargeConfig
from .ev import EvConfig
from .tariff_features import ChipModeSettings, CurtailmentSettings, ExportBoostSettings

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"  # an environment variable's name (never its value)
Gate = tuple[tuple[float, float], ...]

# The spike-reserve rule's defaults (wholesale $/MWh), chosen by captured money in
# ``benchmarks/bench_price_forecast.py``; ``forecasts.price_mapping.SpikeReserveRule`` takes its defaults from here.
RESERVE_WEIGHT = 1.0
SPIKE_THRESHOLD_PER_MWH = 200.0  # inside a spike episode
QUIET_THRESHOLD_PER_MWH: float | None = 300.0  # outside one (None: one threshold everywhere)
RESERVE_GATE: Gate = ((300.0, 1.0),)  # the rule fires only after >= 300 $/MWh within the last day
EPISODE_GATE: Gate = ((1000.0, 7.0),)  # inside an episode: >= 1000 $/MWh within 7 days
RESERVE_HORIZON_HOURS: float | None = 18.0  # only slots within 18 h of now are lifted
RESERVE_SIDE = "both"
RESERVE_SIDES = ("both", "import")


def check_gate(name: str, pairs) -> Gate:
    """``pairs`` as a gate (``((level $/MWh, days), ...)``), or a ValueError naming the entry that is not > 0."""
    gate = tuple((float(level), float(days)) for level, days in pairs)
    for level, days in gate:
        if level <= 0 or days <= 0:
            raise ValueError(f"{name} entry [{level:g}, {days:g}]: level ($/MWh) and days must both be > 0")
    return gate


class SolarConfig(StrictModel):
    peak_kw: float = Field(ge=0, le=1000)
    tilt: float = Field(20, ge=0, le=90)
    azimuth: float = Field(0, ge=0, lt=360)  # degrees from north; 0 faces north (southern hemisphere)
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    losses_pct: float = Field(14, ge=0, le=60)
    # Solcast rooftop sites (forecasts/solcast.py): one resource id, or several comma-separated (arrays facing
    # different ways, summed); the API key is read from the environment variable ``solcast_token_env`` names.
    solcast_resource_id: str | None = None
    solcast_token_env: str | None = Field(None, pattern=ENV_NAME)
    solcast_base_url: str | None = None  # beats $POWERSYNC_SOLCAST_BASE_URL, which beats the public API
    solcast_daily_limit: int = Field(10, ge=1, le=10000)  # calls per UTC day for the key (hobbyist: 10)
    solcast_max_age_hours: float = Field(24, gt=0, le=168)  # older cached forecasts are not planned on
    solcast_timeout_s: float = Field(20, gt=0, le=120)

    @field_validator("solcast_resource_id")
    @classmethod
    def _resource_ids(cls, v: str | None) -> str | None:
        if v is None:
            return v
        ids = [p.strip() for p in v.split(",")]
        bad = [p for p in ids if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{2,63}", p)]
        if bad or not ids:
            raise ValueError(f"Solcast resource id(s) {bad or [v]} are not ids like 'ab12-cd34-ef56-7890' "
                             "(comma-separated for several arrays)")
        if len(set(ids)) != len(ids):
            raise ValueError(f"Solcast resource id listed twice in {v!r}")
        return ",".join(ids)

    @model_validator(mode="after")
    def _solcast_key(self) -> SolarConfig:
        if self.solcast_resource_id and not self.solcast_token_env:
            raise ValueError("solcast_resource_id needs solcast_token_env: the name of the environment variable "
                             "holding the Solcast API key (the key never goes in the sites file)")
        return self

    @property
    def solcast_resources(self) -> list[str]:
        """The configured Solcast rooftop resource ids (empty when Solcast is not configured)."""
        return self.solcast_resource_id.split(",") if self.solcast_resource_id else []


class LoadConfig(StrictModel):
    """Household load until measured history exists: a shipped real profile, scaled to ``annual_kwh``."""

    profile: str = "data/profiles/ausgrid_customer12.csv"
    annual_kwh: float | None = Field(None, gt=0)


class LimitsConfig(StrictModel):
    export_kw: float = Field(5.0, ge=0, le=1000)
    import_kw: float = Field(15.0, gt=0, le=1000)


class SpikeWatchConfig(StrictModel):
    enabled: bool = True
    threshold_per_mwh: float | None = Field(None, gt=0)  # default depends on battery kind (300 Tesla, 3000 VPP)
    hysteresis_per_mwh: float = Field(20.0, ge=0)
    discharge_kw: float | None = Field(None, gt=0)


class SpikeReserveConfig(StrictModel):
    """The learned forecast's spike-reserve rule for this site (``forecasts.price_mapping.SpikeReserveRule``,
    built by ``price_mapping.reserve_rule``); the defaults are the module constants above.

    ``gate`` / ``episode_gate``: ``[[level $/MWh, days], ...]``; ``[]`` = always open / always in an episode.
    Levels are wholesale $/MWh; a site whose model learns the import price ($/kWh) compares them / 1000.
    """

    enabled: bool = True
    weight: float = Field(RESERVE_WEIGHT, ge=0, le=1)  # plan = mean + weight x (P90 - mean) where the rule fires
    threshold_per_mwh: float = Field(SPIKE_THRESHOLD_PER_MWH, gt=0)  # inside a spike episode
    quiet_threshold_per_mwh: float | None = Field(QUIET_THRESHOLD_PER_MWH, gt=0)  # outside one (None: the threshold everywhere)
    gate: list[tuple[float, float]] = list(RESERVE_GATE)
    episode_gate: list[tuple[float, float]] = list(EPISODE_GATE)
    horizon_hours: float | None = Field(RESERVE_HORIZON_HOURS, gt=0, le=48)  # None: the whole 48 h horizon
    side: Literal["both", "import"] = RESERVE_SIDE

    @field_validator("gate", "episode_gate")
    @classmethod
    def _positive_pairs(cls, v: list[tuple[float, float]], info: ValidationInfo) -> list[tuple[float, float]]:
        check_gate(info.field_name, v)  # the rule's own check, at load time so the error names the site's field
        return v


class FeaturesConfig(StrictModel):
    spike_protection: bool = True
    # A boost or chip-mode section that is present is on unless it says ``enabled: false``; absent means off.
    # Curtailment is on by default: every site with solar must stop paying to export.
    export_boost: ExportBoostSettings = ExportBoostSettings(enabled=False)
    chip_mode: ChipModeSettings = ChipModeSettings(enabled=False)
    curtailment: CurtailmentSettings = CurtailmentSettings()
    spike_watch: SpikeWatchConfig = SpikeWatchConfig()
    spike_reserve: SpikeReserveConfig = SpikeReserveConfig()
    demand_charge: DemandChargeConfig | None = None

    @field_validator("demand_charge", mode="before")
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:
        return None if v == {} else v  # `demand_charge: {}` (the old default) means no demand tariff

    @field_validator("export_boost", "chip_mode", mode="before")
    @classmethod
    def _present_means_on(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {"enabled": bool(v), **v}
        return v


class AcInverterConfig(StrictModel):
    brand: Literal["sungrow_sg", "fronius", "goodwe", "huawei", "enphase", "zeversolar"]
    host: str
    port: int | None = Field(None, ge=1, le=65535)
    device_id: int | None = Field(None, ge=0, le=255)
    token_env: str | None = None
    rated_kw: float | None = Field(None, gt=0)


__all__ = ["AcInverterConfig", "EvConfig", "FeaturesConfig", "LimitsConfig", "LoadConfig", "SolarConfig"]
