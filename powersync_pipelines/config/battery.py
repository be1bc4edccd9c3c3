"""Battery section of a site (``battery:``): which system, how to reach it, and its ratings.

Ratings are hard limits: nothing in the product may command beyond ``max_*_kw`` or below the reserve.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ._base import StrictModel
from .features import ENV_NAME

BatteryKind = Literal["sungrow_sh", "sigenergy", "tesla", "simulated"]


class BatteryConfig(StrictModel):
    kind: BatteryKind
    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    device_id: int | None = Field(None, ge=0, le=255)
    base_url: str | None = None
    token_env: str | None = None
    energy_site_id: str | None = None
    capacity_kwh: float = Field(gt=0, le=1000)
    max_charge_kw: float = Field(gt=0, le=500)
    max_discharge_kw: float = Field(gt=0, le=500)
    charge_efficiency: float = Field(0.95, gt=0, le=1)
    discharge_efficiency: float = Field(0.95, gt=0, le=1)
    backup_reserve_pct: float = Field(10, ge=0, le=100)
    optimizer_reserve_pct: float = Field(20, ge=0, le=100)
    initial_soc_pct: float = Field(50, ge=0, le=100)
    wear_cost_per_kwh: float = Field(0.01, ge=0, le=1)
    telemetry_max_age_s: float = Field(120, gt=0)
    # Connection behaviour (Modbus and HTTP drivers): per-request timeout, reconnect attempts per request and
    # the first backoff step (it doubles, with jitter, up to 10 s).
    timeout_s: float = Field(3.0, gt=0, le=60)
    connect_attempts: int = Field(3, ge=1, le=10)
    backoff_base_s: float = Field(0.5, gt=0, le=60)
    # Tesla: which cloud ("teslemetry" applies its 30 calls / 60 s limit client-side); None = guess from base_url.
    api: Literal["fleet", "teslemetry"] | None = None
    rate_limit_per_minute: int | None = Field(None, ge=1, le=10000)
    # Tesla Fleet API log-in that stays logged in (devices/tesla_api.py TeslaOAuth): the app's client id, the env
    # var holding the first refresh token (rotated ones are kept under $POWERSYNC_HOME/credentials, 0600) and
    # the token endpoint (else $POWERSYNC_TESLA_AUTH_URL, else Tesla's fleet-auth host). ``token_env`` may
    # still hold a current access token; it is used until it expires.
    oauth_client_id: str | None = Field(None, min_length=1, max_length=200)
    refresh_token_env: str | None = Field(None, pattern=ENV_NAME)
    oauth_token_url: str | None = None
    # Sigenergy cloud (tariff upload): base URL, env var names holding the app login, station id, and the
    # account's 13-digit ``userDeviceId`` where the account has one (EU accounts do not).
    cloud_base_url: str | None = None
    cloud_username_env: str | None = None
    cloud_password_env: str | None = None
    station_id: str | None = None
    cloud_device_id: str | None = Field(None, pattern=r"^\d{13}$")

    @model_validator(mode="after")
    def _check(self) -> BatteryConfig:
        if self.kind in ("sungrow_sh", "sigenergy") and (not self.host or self.port is None):
            raise ValueError(f"battery kind '{self.kind}' needs 'host' and 'port' (Modbus TCP)")
        if self.refresh_token_env or self.oauth_client_id:
            if self.kind != "tesla":
                raise ValueError(f"refresh_token_env / oauth_client_id are Tesla Fleet API settings, not for "
                                 f"battery kind '{self.kind}'")
            if not (self.refresh_token_env and self.oauth_client_id):
                raise ValueError("the Tesla Fleet API refresh flow needs both oauth_client_id and refresh_token_env")
            if self.api == "teslemetry" or "teslemetry" in (self.base_url or ""):
                raise ValueError("Teslemetry tokens do not expire and are not refreshed: drop refresh_token_env "
                                 "and oauth_client_id, keep token_env")
        if self.cloud_device_id and self.kind != "sigenergy":
            raise ValueError(f"cloud_device_id is the Sigenergy cloud account's device id, not for battery kind "
                             f"'{self.kind}'")
        if self.optimizer_reserve_pct < self.backup_reserve_pct:
            raise ValueError(
                f"optimizer_reserve_pct ({self.optimizer_reserve_pct}) must be >= backup_reserve_pct "
                f"({self.backup_reserve_pct})"
            )
        return self

    @property
    def reserve_fraction(self) -> float:
        """The SOC floor the planner respects (the higher of the two reserves)."""
        return max(self.backup_reserve_pct, self.optimizer_reserve_pct) / 100.0
