"""Optional site sections: solar, load, grid limits, features, AC inverter, EV, automations."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from ._base import StrictModel
from .tariff_features import ChipModeSettings, CurtailmentSettings, ExportBoostSettings

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
    solcast_resource_id: str | None = None
    solcast_token_env: str | None = None


class LoadConfig(StrictModel):
    """Household load until measured history exists: a shipped real profile, scaled to ``annual_kwh``."""

    profile: str = "data/profiles/ausgrid_customer12_load.csv"
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
    demand_charge: dict[str, Any] = {}

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


class EvConfig(StrictModel):
    charger: Literal["ocpp", "tesla_wall_connector", "wallbox", "easee", "generic"]
    max_amps: float = Field(32, gt=0, le=80)
    min_amps: float = Field(6, ge=0, le=80)
    phases: Literal[1, 3] = 1
    voltage: float = Field(230, gt=100, le=480)
    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
