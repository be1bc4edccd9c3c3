"""Real peers for the live tests: a NEMWEB-shaped feed and Sungrow simulators on loopback, a DuckDB file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from powersync_pipelines.sim.nemweb_feed import NemwebFeed
from powersync_pipelines.sim.sungrow_sh import SungrowSimulator


@pytest.fixture
def feed() -> Iterator[NemwebFeed]:
    with NemwebFeed() as f:
        yield f


@pytest.fixture
def sim_factory() -> Iterator[Any]:
    started: list[SungrowSimulator] = []

    def make(soc: float = 0.6) -> SungrowSimulator:
        sim = SungrowSimulator(port=0, capacity_kwh=13.5, soc=soc, max_charge_kw=5.0, max_discharge_kw=5.0)
        sim.start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


@pytest.fixture
def sim(sim_factory) -> SungrowSimulator:
    return sim_factory()


def sungrow_site(site_id: str, port: int, feed_url: str, region: str = "SA1", **extra: Any) -> dict[str, Any]:
    """A site dict for the sites file: AEMO provider on the local feed, Sungrow SH on the simulator."""
    site: dict[str, Any] = {
        "id": site_id, "timezone": "Australia/Adelaide", "country": "AU",
        "provider": {"kind": "aemo", "region": region, "base_url": feed_url},
        "battery": {"kind": "sungrow_sh", "host": "127.0.0.1", "port": port, "device_id": 1, "capacity_kwh": 13.5,
                    "max_charge_kw": 5.0, "max_discharge_kw": 5.0, "backup_reserve_pct": 10,
                    "optimizer_reserve_pct": 20},
    }
    site.update(extra)
    return site


def write_sites(path: Path, sites: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"sites": sites}, sort_keys=False))
    return path
