"""What every control path needs: the history store, the clock, the arbiter, and the site's devices.

Devices opened here are *arbitrated*: a write without the arbiter's grant is refused by the driver itself
(``devices.grants``), so nothing in the control layer can reach a device around the arbiter. ``endpoints``
overrides a site's ``host:port`` (the simulators of the demo and the UI listen on whatever port was free).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..config import SiteConfig
from ..devices import BatteryDevice, open_device
from ..devices.inverters import AcInverter, open_inverter
from ..storage import HistoryStore
from .arbiter import Arbiter
from .clock import Clock


def with_endpoint(site: SiteConfig, endpoints: Mapping[str, str]) -> SiteConfig:
    """``site`` with its battery's host:port replaced by ``endpoints[site.id]`` where one is given."""
    if site.id not in endpoints or site.battery.host is None:
        return site
    host, _, port = endpoints[site.id].rpartition(":")
    return site.model_copy(update={"battery": site.battery.model_copy(update={"host": host, "port": int(port)})})


@dataclass
class ControlContext:
    store: HistoryStore
    clock: Clock = field(default_factory=Clock)
    endpoints: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.arbiter = Arbiter(self.store, self.clock.wall)

    @contextmanager
    def battery(self, site: SiteConfig) -> Iterator[BatteryDevice]:
        """The site's battery driver for live control; closed on exit."""
        device = open_device(with_endpoint(site, self.endpoints), self.store, arbitrated=True)
        try:
            yield device
        finally:
            device.close()

    @contextmanager
    def inverter(self, site: SiteConfig) -> Iterator[AcInverter]:
        """The site's AC-coupled inverter driver; closed on exit."""
        if site.ac_inverter is None:
            raise ValueError(f"site {site.id!r} has no ac_inverter section")
        inverter = open_inverter(site.ac_inverter)
        inverter.arbitrated = True
        try:
            yield inverter
        finally:
            inverter.close()
