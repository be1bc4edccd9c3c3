"""The driver for each battery kind of the sites file (``battery.kind``): adding a system is adding a module and a
line here."""

from __future__ import annotations

from ..config import SiteConfig
from ..storage import HistoryStore
from .base import BatteryDevice, DeviceError
from .sigenergy import Sigenergy
from .simulated import SimulatedBattery
from .sungrow_sh import SungrowSH
from .tesla import TeslaPowerwall

DRIVERS: dict[str, type[BatteryDevice]] = {
    "sungrow_sh": SungrowSH,
    "sigenergy": Sigenergy,
    "tesla": TeslaPowerwall,
    "simulated": SimulatedBattery,
}


def open_device(site: SiteConfig, store: HistoryStore | None = None, arbitrated: bool = False) -> BatteryDevice:
    """The driver for ``site.battery.kind`` (nothing is connected until the first call). ``arbitrated``: every
    write needs the arbiter's grant (``devices.grants``); the control layer opens live devices that way."""
    driver = DRIVERS.get(site.battery.kind)
    if driver is None:
        raise DeviceError(f"site {site.id!r}: unknown battery kind {site.battery.kind!r}")
    return driver(site, store, arbitrated=arbitrated)
