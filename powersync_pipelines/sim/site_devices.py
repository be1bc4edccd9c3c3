"""Starting the simulated devices a sites file asks for (demo, UI, tests): one simulator per Modbus site.

A site whose configured port is taken gets a free port instead, returned as an endpoint override so the
demo can run while ``make ui`` (and its own simulator) is up.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from ..config import SiteConfig


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


@contextmanager
def simulated_devices(sites: list[SiteConfig], soc: float | None = None) -> Iterator[dict[str, str]]:
    """Start a simulator for every ``sungrow_sh`` site on loopback; yields ``{site_id: "host:port"}``."""
    from .sungrow_sh import SungrowSimulator

    endpoints: dict[str, str] = {}
    with ExitStack() as stack:
        for site in sites:
            b = site.battery
            if b.kind != "sungrow_sh" or b.host not in ("127.0.0.1", "localhost"):
                continue
            port = b.port if b.port and _port_free("127.0.0.1", b.port) else 0
            sim = SungrowSimulator(
                host="127.0.0.1", port=port, capacity_kwh=b.capacity_kwh,
                soc=soc if soc is not None else b.initial_soc_pct / 100.0,
                max_charge_kw=b.max_charge_kw, max_discharge_kw=b.max_discharge_kw,
            )
            sim.start()
            stack.callback(sim.stop)
            endpoints[site.id] = f"127.0.0.1:{sim.port}"
        yield endpoints
