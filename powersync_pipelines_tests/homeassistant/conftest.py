"""A real broker per test, the demo site on a simulated Sungrow SH, and a sites file pointing at it."""

from __future__ import annotations

import json

import pytest
import yaml

from powersync_pipelines.sim.sungrow_sh import SungrowSimulator

from .broker import BrokerProcess


@pytest.fixture
def broker():
    b = BrokerProcess()
    b.start()
    yield b
    b.close()


@pytest.fixture
def sim():
    s = SungrowSimulator(port=0, capacity_kwh=13.5, soc=0.5, max_charge_kw=5.0, max_discharge_kw=5.0)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def sites_file(tmp_path, demo_site, sim) -> str:
    site = json.loads(demo_site.model_dump_json(exclude={"base_dir"}, exclude_none=True))
    site["battery"]["port"] = sim.port
    path = tmp_path / "sites.yaml"
    path.write_text(yaml.safe_dump({"sites": [site]}))
    return str(path)
