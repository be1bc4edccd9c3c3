"""Device fixtures: simulators on free loopback ports and sites pointing at them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from powersync_pipelines.config import SiteConfig, parse_sites
from powersync_pipelines.sim.sungrow_sh import SungrowSimulator


def make_site(battery: dict[str, Any], site_id: str = "t1") -> SiteConfig:
    base = {"capacity_kwh": 13.5, "max_charge_kw": 5.0, "max_discharge_kw": 5.0, "backup_reserve_pct": 10,
            "optimizer_reserve_pct": 20, "timeout_s": 0.5, "connect_attempts": 2, "backoff_base_s": 0.05}
    doc = {"sites": [{"id": site_id, "timezone": "Australia/Melbourne",
                      "provider": {"kind": "aemo", "region": "VIC1"}, "battery": {**base, **battery}}]}
    return parse_sites(doc).sites[0]


@pytest.fixture
def sungrow_sim() -> Iterator[SungrowSimulator]:
    sim = SungrowSimulator(port=0, soc=0.5, load_kw=1.0, solar_kw=0.0, time_scale=0.0)
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def sungrow_site(sungrow_sim: SungrowSimulator) -> SiteConfig:
    return make_site({"kind": "sungrow_sh", "host": "127.0.0.1", "port": sungrow_sim.port, "device_id": 1})


@pytest.fixture
def sigen_sim():
    from powersync_pipelines.sim.sigenergy import SigenergySimulator

    sim = SigenergySimulator(port=0, soc=0.5, load_kw=1.0, solar_kw=0.0, time_scale=0.0)
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def sigen_site(sigen_sim) -> SiteConfig:
    return make_site({"kind": "sigenergy", "host": "127.0.0.1", "port": sigen_sim.port})


@pytest.fixture
def tesla_sim():
    from powersync_pipelines.sim.tesla import TeslaSimulator

    sim = TeslaSimulator(port=0, soc=0.5, load_kw=1.0, token="test-token-123", time_scale=0.0)
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def tesla_site(tesla_sim, monkeypatch) -> SiteConfig:
    monkeypatch.setenv("TEST_TESLA_TOKEN", "test-token-123")
    return make_site({"kind": "tesla", "base_url": tesla_sim.base_url, "token_env": "TEST_TESLA_TOKEN",
                      "backup_reserve_pct": 20, "optimizer_reserve_pct": 20})
