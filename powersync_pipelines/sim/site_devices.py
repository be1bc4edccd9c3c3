"""Starting the simulated devices a sites file asks for (demo, UI, tests): one simulator per Modbus site.

A site whose configured port is taken gets a free port instead, returned as an endpoint override so the
demo can run while ``make ui`` (and its own simulator) is up. "Taken" is learnt from the simulator's own bind,
never from a probe before it: two demos started together cannot both believe they own the port.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from ..config import SiteConfig
from ..config.battery import BatteryConfig
from .modbus_server import PortInUseError
from .sungrow_sh import SungrowSimulator


def _start(b: BatteryConfig, port: int, soc: float | None) -> SungrowSimulator:
    sim = SungrowSimulator(
        host="127.0.0.1", port=port, capacity_kwh=b.capacity_kwh,
        soc=soc if soc is not None else b.initial_soc_pct / 100.0,
        max_charge_kw=b.max_charge_kw, max_discharge_kw=b.max_discharge_kw,
    )
    sim.start()
    return sim


@contextmanager
def simulated_devices(sites: list[SiteConfig], soc: float | None = None) -> Iterator[dict[str, str]]:
    """Start a simulator for every ``sungrow_sh`` site on loopback; yields ``{site_id: "host:port"}``."""
    endpoints: dict[str, str] = {}
    with ExitStack() as stack:
        for site in sites:
            b = site.battery
            if b.kind != "sungrow_sh" or b.host not in ("127.0.0.1", "localhost"):
                continue
            try:
                sim = _start(b, b.port or 0, soc)
            except PortInUseError:
                sim = _start(b, 0, soc)
            stack.callback(sim.stop)
            endpoints[site.id] = f"127.0.0.1:{sim.port}"
        yield endpoints
