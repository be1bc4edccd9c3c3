"""Site configuration: models and the validated loader."""

from .battery import BatteryConfig
from .features import AcInverterConfig, EvConfig, FeaturesConfig, LimitsConfig, LoadConfig, SolarConfig
from .provider import ProviderConfig, RetailMapping, TouPeriod
from .sites import SiteConfig, SiteConfigError, SitesFile, load_sites, parse_sites

__all__ = [
    "AcInverterConfig",
    "BatteryConfig",
    "EvConfig",
    "FeaturesConfig",
    "LimitsConfig",
    "LoadConfig",
    "ProviderConfig",
    "RetailMapping",
    "SiteConfig",
    "SiteConfigError",
    "SitesFile",
    "SolarConfig",
    "TouPeriod",
    "load_sites",
    "parse_sites",
]
