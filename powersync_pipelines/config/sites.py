"""The sites file: one YAML document, ``sites: [...]``, validated on load with errors naming site and field."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from ..paths import sites_file
from ._base import StrictModel
from .automations import AutomationRules, SiteNotifications
from .battery import BatteryConfig
from .checks import cross_check
from .features import AcInverterConfig, EvConfig, FeaturesConfig, LimitsConfig, LoadConfig, SolarConfig
from .provider import ProviderConfig
from .switches import CostFunction
from .yaml_load import YamlError, load_yaml


class SiteConfigError(ValueError):
    """A sites file that cannot be used; the message names the site and field."""


class SiteConfig(StrictModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    timezone: str
    country: Literal["AU", "UK"] = "AU"
    currency: Literal["AUD", "GBP"] | None = None
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    provider: ProviderConfig
    battery: BatteryConfig
    solar: SolarConfig | None = None
    load: LoadConfig = LoadConfig()
    limits: LimitsConfig = LimitsConfig()
    features: FeaturesConfig = FeaturesConfig()
    ac_inverter: AcInverterConfig | None = None
    ev: EvConfig | None = None
    automations: AutomationRules = []
    notifications: SiteNotifications = {}  # validated into NotificationSettings (default: the log only)
    # Switches (``config/switches.py``); a service call overrides them per site (``control.switches``).
    optimization: bool = True  # off: plans are computed and stored, never pushed; the battery runs itself
    auto_tou_sync: bool = True  # off: the planning cycle uploads no TOU tariff (the service still can)
    cost_function: CostFunction = "cost"  # the planner's objective: money, or energy kept in the house
    # Where relative paths in this site resolve from (the sites file's folder); set by the loader.
    base_dir: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {v!r}") from exc
        return v

    @model_validator(mode="after")
    def _defaults(self) -> SiteConfig:
        if self.currency is None:
            object.__setattr__(self, "currency", "GBP" if self.country == "UK" else "AUD")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def location(self) -> tuple[float, float]:
        """(lat, lon): the site's own, else the solar section's, else the capital of its timezone's state."""
        if self.latitude is not None and self.longitude is not None:
            return self.latitude, self.longitude
        if self.solar and self.solar.latitude is not None and self.solar.longitude is not None:
            return self.solar.latitude, self.solar.longitude
        return _TZ_LOCATIONS.get(self.timezone, (-33.87, 151.21))


_TZ_LOCATIONS = {
    "Australia/Melbourne": (-37.81, 144.96),
    "Australia/Sydney": (-33.87, 151.21),
    "Australia/Brisbane": (-27.47, 153.03),
    "Australia/Adelaide": (-34.93, 138.60),
    "Australia/Hobart": (-42.88, 147.33),
    "Australia/Perth": (-31.95, 115.86),
    "Australia/Darwin": (-12.46, 130.84),
    "Europe/London": (51.51, -0.13),
}


class SitesFile(StrictModel):
    sites: list[SiteConfig] = Field(min_length=1)
    path: str | None = None

    def get(self, site_id: str) -> SiteConfig:
        for site in self.sites:
            if site.id == site_id:
                return site
        known = ", ".join(s.id for s in self.sites)
        raise SiteConfigError(f"{self.path or 'sites file'}: no site with id {site_id!r} (sites: {known})")


def _describe(err: dict[str, Any], raw_sites: list[Any]) -> str:
    loc = list(err["loc"])
    where = "sites file"
    if len(loc) >= 2 and loc[0] == "sites" and isinstance(loc[1], int):
        idx = loc[1]
        raw = raw_sites[idx] if idx < len(raw_sites) and isinstance(raw_sites[idx], dict) else {}
        where = f"site {raw.get('id', f'#{idx + 1}')!r}"
        loc = loc[2:]
    field = ".".join(str(p) for p in loc) or "(site)"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "required field is missing"
    got = err.get("input")
    tail = "" if err["type"] in ("missing",) or isinstance(got, dict | list) else f" (got {got!r})"
    return f"{where}: {field}: {msg}{tail}"


def parse_sites(data: Any, path: str | None = None) -> SitesFile:
    """Validate an already-parsed sites document."""
    if not isinstance(data, dict) or "sites" not in data:
        raise SiteConfigError(f"{path or 'sites file'}: expected a mapping with a 'sites:' list")
    raw_sites = data.get("sites") or []
    base_dir = str(Path(path).parent) if path else None
    if isinstance(raw_sites, list):
        raw_sites = [{**s, "base_dir": s.get("base_dir", base_dir)} if isinstance(s, dict) else s for s in raw_sites]
    try:
        parsed = SitesFile.model_validate({**data, "sites": raw_sites, "path": path})
    except ValidationError as exc:
        lines = [_describe(e, raw_sites if isinstance(raw_sites, list) else []) for e in exc.errors()]
        raise SiteConfigError(f"{path or 'sites file'} is invalid:\n  " + "\n  ".join(lines)) from None
    seen: set[str] = set()
    dupes = sorted({s.id for s in parsed.sites if s.id in seen or seen.add(s.id)})
    if dupes:
        raise SiteConfigError(f"{path or 'sites file'}: duplicate site id(s): {', '.join(dupes)}")
    problems = cross_check(parsed.sites)
    if problems:
        raise SiteConfigError(f"{path or 'sites file'} is invalid:\n  " + "\n  ".join(problems))
    return parsed


def load_sites(path: str | os.PathLike[str] | None = None) -> SitesFile:
    """Load and validate the sites file (``--sites``, ``$POWERSYNC_SITES`` or the shipped demo)."""
    p = sites_file(path)
    if not p.exists():
        raise SiteConfigError(f"sites file not found: {p}")
    try:
        data = load_yaml(p.read_text())
    except YamlError as exc:
        raise SiteConfigError(f"{p}: {exc}") from None
    except yaml.YAMLError as exc:
        raise SiteConfigError(f"{p}: not valid YAML: {' '.join(str(exc).split())}") from None
    except UnicodeDecodeError as exc:
        raise SiteConfigError(f"{p}: not a text file ({exc.reason} at byte {exc.start})") from None
    return parse_sites(data, str(p))
