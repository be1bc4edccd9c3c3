"""Optional site sections: solar, load, grid limits, features, AC inverter, automations (EV: ``config/ev.py``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from ..forecasts.price_mapping import SpikeReserveRule, check_gate
from ._base import StrictModel
from .demand import DemandChargeConfig
from .ev import EvConfig
from .tariff_features import ChipModeSettings, CurtailmentSettings, ExportBoostSettings

_RULE = SpikeReserveRule()  # the defaults, chosen by captured money (forecasts.price_mapping)


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
    built by :meth:`rule`); the defaults are the rule's, chosen by captured money in
    ``benchmarks/bench_price_forecast.py``.

    ``gate`` / ``episode_gate``: ``[[level $/MWh, days], ...]``; ``[]`` = always open / always in an episode.
    Levels are wholesale $/MWh; a site whose model learns the import price ($/kWh) compares them / 1000.
    """

    enabled: bool = True
    weight: float = Field(_RULE.weight, ge=0, le=1)  # plan = mean + weight x (P90 - mean) where the rule fires
    threshold_per_mwh: float = Field(_RULE.threshold, gt=0)  # inside a spike episode
    quiet_threshold_per_mwh: float | None = Field(_RULE.quiet_threshold, gt=0)  # outside one (None: the threshold everywhere)
    gate: list[tuple[float, float]] = list(_RULE.gate)
    episode_gate: list[tuple[float, float]] = list(_RULE.episode_gate)
    horizon_hours: float | None = Field(_RULE.horizon_hours, gt=0, le=48)  # None: the whole 48 h horizon
    side: Literal["both", "import"] = _RULE.side

    @field_validator("gate", "episode_gate")
    @classmethod
    def _positive_pairs(cls, v: list[tuple[float, float]], info: ValidationInfo) -> list[tuple[float, float]]:
        check_gate(info.field_name, v)  # the rule's own check, at load time so the error names the site's field
        return v

    def rule(self) -> SpikeReserveRule:
        """The rule the live blend and the site's backtests plan with (weight 0 when disabled)."""
        return SpikeReserveRule(weight=self.weight if self.enabled else 0.0, threshold=self.threshold_per_mwh,
                                quiet_threshold=self.quiet_threshold_per_mwh, gate=tuple(self.gate),
                                episode_gate=tuple(self.episode_gate), horizon_hours=self.horizon_hours,
                                side=self.side)


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
