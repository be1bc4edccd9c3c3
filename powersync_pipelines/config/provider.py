"""Price-provider section of a site (``provider:``).

One model for every provider kind so the sites file stays flat and readable; fields that a kind does not
use are simply left unset. Validation of kind-specific requirements happens in ``_check_kind``.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ._base import StrictModel

ProviderKind = Literal["replay", "amber", "aemo", "flow_power", "globird", "octopus", "normalized"]
NEM_REGIONS = ("NSW1", "QLD1", "VIC1", "SA1", "TAS1")


class RetailMapping(StrictModel):
    """Turns a wholesale RRP ($/MWh ex-GST) into what the owner pays and earns ($/kWh inc-GST).

    import = max(floor, (RRP/1000 + network_adder) * (1 + gst)) ; export = RRP/1000 * export_factor - export_fee
    """

    network_adder_per_kwh: float = Field(0.12, ge=0, le=2)
    gst: float = Field(0.10, ge=0, le=0.5)
    import_floor_per_kwh: float | None = 0.0
    export_factor: float = Field(1.0, ge=0, le=2)
    export_fee_per_kwh: float = Field(0.0, ge=-1, le=1)


class TouPeriod(StrictModel):
    """A static tariff band (Globird, Flow Power network tariff): local ``HH:MM`` start/end, $/kWh."""

    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(pattern=r"^([01]\d|2[0-4]):[0-5]\d$")
    import_price: float = Field(ge=-2, le=20)
    export_price: float = Field(0.0, ge=-2, le=20)


class ProviderConfig(StrictModel):
    kind: ProviderKind
    region: str | None = None
    file: str | None = None
    format: Literal["aemo", "normalized", "amber", "octopus"] | None = None
    base_url: str | None = None
    # replay
    replay_start: str | None = None  # ISO UTC instant the demo clock starts at
    retail: RetailMapping = RetailMapping()
    # amber
    site_id: str | None = None
    token_env: str | None = None
    resolution: Literal[5, 30] = 5
    # octopus
    gsp: str | None = Field(None, pattern=r"^[A-HJ-NP]$")  # the 14 GSP regions (no I, no O)
    product: str | None = None
    export_product: str | None = None
    # flow power / globird
    network_tariff: list[TouPeriod] = []
    margin_per_kwh: float = Field(0.0, ge=-1, le=2)
    happy_hour_start: str = Field("17:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    happy_hour_end: str = Field("19:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    happy_hour_export_per_kwh: float = Field(0.45, ge=0, le=20)
    tou: list[TouPeriod] = []
    # flow power: where the wholesale price comes from. ``auto``: Amber's spot price (spotPerKwh) when an Amber
    # token is configured (``token_env``, optional ``site_id``), else AEMO NEMWEB; ``amber_base_url`` beats
    # $POWERSYNC_AMBER_BASE_URL (``base_url`` stays NEMWEB's, the fallback).
    wholesale_source: Literal["auto", "aemo", "amber"] = "auto"
    amber_base_url: str | None = None
    spike_threshold_per_mwh: float = Field(3000.0, gt=0)
    stale_after_minutes: int = Field(30, ge=1, le=24 * 60)
    # http (all network providers): per attempt, and for a whole fetch (every request, retry and backoff in it)
    request_timeout_s: float = Field(20.0, gt=0, le=300)
    fetch_deadline_s: float = Field(30.0, gt=0, le=600)

    @field_validator("replay_start", mode="before")
    @classmethod
    def _instant(cls, v: Any) -> Any:
        """An ISO 8601 instant with its offset (``2024-02-12T20:00:00Z``); YAML may hand over a datetime."""
        if v is None:
            return v
        if isinstance(v, datetime):  # unquoted in YAML
            if v.tzinfo is None:
                raise ValueError(f"{v.isoformat()} has no UTC offset; write e.g. {v.isoformat()}Z")
            return v.isoformat()
        if not isinstance(v, str):
            raise ValueError(f"expected an ISO 8601 instant such as 2024-02-12T20:00:00Z, got {v!r}")
        try:
            parsed = datetime.fromisoformat(v.strip())
        except ValueError:
            raise ValueError(f"{v!r} is not an ISO 8601 instant (e.g. 2024-02-12T20:00:00Z)") from None
        if parsed.tzinfo is None:
            raise ValueError(f"{v!r} has no UTC offset; write e.g. {v.strip()}Z")
        return v.strip()

    @model_validator(mode="after")
    def _check_kind(self) -> ProviderConfig:
        if self.kind in ("replay", "normalized") and not self.file:
            raise ValueError(f"provider kind '{self.kind}' needs 'file'")
        if self.kind in ("aemo", "flow_power", "globird") and self.region not in NEM_REGIONS:
            raise ValueError(f"provider kind '{self.kind}' needs 'region' one of {', '.join(NEM_REGIONS)}")
        if self.region is not None and self.region not in NEM_REGIONS:
            raise ValueError(f"region must be one of {', '.join(NEM_REGIONS)}, got {self.region!r}")
        if self.kind == "octopus" and not self.gsp:
            raise ValueError("provider kind 'octopus' needs 'gsp' (a GSP region letter A-P, not I or O)")
        if self.wholesale_source != "auto" and self.kind != "flow_power":
            raise ValueError("wholesale_source chooses Flow Power's wholesale feed; it does not apply to "
                             f"provider kind '{self.kind}'")
        if self.kind == "flow_power" and self.wholesale_source == "amber" and not self.token_env:
            raise ValueError("wholesale_source 'amber' needs token_env: the environment variable holding the "
                             "Amber API token")
        if self.kind == "globird" and not self.tou:
            raise ValueError("provider kind 'globird' needs 'tou' bands (its prices are a static time-of-use tariff)")
        for name in ("tou", "network_tariff"):
            bands = getattr(self, name)
            if bands:
                gap = _first_uncovered_minute(bands)
                if gap is not None:
                    raise ValueError(f"'{name}' bands leave {gap // 60:02d}:{gap % 60:02d} uncovered; cover all 24 h")
        return self


def _minute_of_day(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _first_uncovered_minute(bands: list[TouPeriod]) -> int | None:
    """The first local minute no band covers (bands may wrap past midnight; start == end is all day)."""
    return _uncovered(tuple((b.start, b.end) for b in bands))


@lru_cache(maxsize=1024)
def _uncovered(windows: tuple[tuple[str, str], ...]) -> int | None:
    """Memoised on the windows alone: a fleet file repeats the same few network tariffs thousands of times."""
    covered = bytearray(1440)
    for start, end in windows:
        s, e = _minute_of_day(start), _minute_of_day(end)
        if s == e:
            return None
        if s < e:
            covered[s:e] = b"\x01" * (e - s)
        else:
            covered[s:] = b"\x01" * (1440 - s)
            covered[:e] = b"\x01" * e
    gap = covered.find(0)
    return None if gap < 0 else gap
