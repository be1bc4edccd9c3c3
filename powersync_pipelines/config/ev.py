"""The ``ev:`` section: which charger, how to reach it, its electrical limits and the default session.

A charger is driven in whole amps per phase between ``min_amps`` and ``max_amps`` (IEC 61851 allows nothing
between 0 and 6 A), so every limit here is checked against that range at load time, not at the first command.
Secrets are never in the file: cloud chargers name the environment variables holding them.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ._base import StrictModel

CHARGER_KINDS = ("ocpp", "tesla_wall_connector", "wallbox", "easee", "generic")
EV_MODES = ("solar_only", "solar_preferred", "cost_optimized", "time_critical")
EvMode = Literal["solar_only", "solar_preferred", "cost_optimized", "time_critical"]
IEC_MIN_AMPS = 6.0
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def check_hhmm(v: str) -> str:
    """A local wall-clock time ``HH:MM`` (24 h)."""
    if not isinstance(v, str) or not _HHMM.match(v):
        raise ValueError(f"expected a local time HH:MM (00:00-23:59), got {v!r}")
    return v


class EvSessionDefaults(StrictModel):
    """The session assumed when a car plugs in and nobody says otherwise (e.g. "07:30, 20 kWh, cheapest")."""

    departure: str = "07:30"  # local time; the next occurrence after plug-in
    target_kwh: float | None = Field(None, gt=0, le=200)  # energy to add, at the battery
    target_soc_pct: float | None = Field(None, gt=0, le=100)  # or a target SOC ...
    current_soc_pct: float | None = Field(None, ge=0, le=100)  # ... from this SOC when the car does not report one
    battery_kwh: float | None = Field(None, gt=0, le=250)  # the car's usable battery, for SOC targets
    mode: EvMode = "cost_optimized"

    _hhmm = field_validator("departure")(classmethod(lambda cls, v: check_hhmm(v)))

    @model_validator(mode="after")
    def _one_target(self) -> EvSessionDefaults:
        if (self.target_kwh is None) == (self.target_soc_pct is None):
            raise ValueError("give exactly one of target_kwh or target_soc_pct")
        if self.target_soc_pct is not None and self.battery_kwh is None:
            raise ValueError("target_soc_pct needs battery_kwh (the car's usable capacity)")
        return self


class GenericChargerConfig(StrictModel):
    """A charger with a switch and a current setpoint, over Modbus TCP or plain HTTP.

    Modbus: holding registers as pymodbus addresses (0-based); ``current_register`` holds amps x
    ``current_scale``; ``enable_register`` 1 = on, 0 = off; optional ``power_register`` (W, input register).
    HTTP: ``GET status_path`` answers JSON with ``enabled``, ``current_a`` and optionally ``power_w``;
    ``POST enable_path {"enabled": bool}`` and ``POST current_path {"current_a": A}``.
    """

    protocol: Literal["modbus", "http"]
    enable_register: int = Field(0, ge=0, le=65535)
    current_register: int = Field(1, ge=0, le=65535)
    current_scale: float = Field(1.0, gt=0)
    power_register: int | None = Field(None, ge=0, le=65535)
    status_path: str = "/status"
    enable_path: str = "/enable"
    current_path: str = "/current"


class EvConfig(StrictModel):
    charger: Literal["ocpp", "tesla_wall_connector", "wallbox", "easee", "generic"]
    charge_point_id: str | None = Field(None, pattern=r"^[A-Za-z0-9._:-]{1,48}$")  # OCPP identity (URL segment)
    connector_id: int = Field(1, ge=1, le=16)
    max_amps: float = Field(32, gt=0, le=80)
    min_amps: float = Field(6, ge=0, le=80)
    phases: Literal[1, 3] = 1
    voltage: float = Field(230, gt=100, le=480)
    efficiency: float = Field(0.9, gt=0, le=1)  # grid kWh -> car battery kWh
    rate_unit: Literal["A", "W"] = "A"  # OCPP SetChargingProfile chargingRateUnit
    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    base_url: str | None = None  # cloud API base (tests and mirrors); default: the vendor's
    auth_url: str | None = None  # Wallbox: the sign-in host, when not the vendor's
    charger_id: str | None = None  # cloud charger id / serial
    username_env: str | None = None
    password_env: str | None = None
    device_id: int = Field(1, ge=0, le=255)  # Modbus unit for the generic charger
    generic: GenericChargerConfig | None = None
    default_session: EvSessionDefaults | None = None
    allow_battery_to_ev: bool = False  # let the home battery discharge into the car when the plan says it pays

    @model_validator(mode="after")
    def _consistent(self) -> EvConfig:
        if self.min_amps > self.max_amps:
            raise ValueError(f"min_amps {self.min_amps} is above max_amps {self.max_amps}")
        if self.min_amps < IEC_MIN_AMPS:
            raise ValueError(f"min_amps {self.min_amps} is below the IEC 61851 minimum of {IEC_MIN_AMPS:g} A")
        if self.charger == "ocpp" and not self.charge_point_id:
            raise ValueError("an ocpp charger needs charge_point_id (the identity it connects with)")
        if self.charger in ("wallbox", "easee") and not (self.charger_id and self.username_env and self.password_env):
            raise ValueError(f"a {self.charger} charger needs charger_id, username_env and password_env")
        if self.charger in ("tesla_wall_connector",) and not self.host:
            raise ValueError("a tesla_wall_connector needs host (its local address)")
        if self.charger == "generic" and (self.generic is None or not self.host):
            raise ValueError("a generic charger needs host and a generic: section (protocol modbus|http)")
        return self

    @property
    def max_kw(self) -> float:
        """The charger's rated AC power (kW) at its max current."""
        return self.max_amps * self.phases * self.voltage / 1000.0

    @property
    def min_kw(self) -> float:
        return self.min_amps * self.phases * self.voltage / 1000.0
