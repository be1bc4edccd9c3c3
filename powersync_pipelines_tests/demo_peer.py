"""The demo site on a simulated Sungrow SH, as a sites file the real CLI reads, and the CLI's JSON answer.

Shared by the tests that drive the product end to end (control, Home Assistant): import the fixtures into a
``conftest.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from powersync_pipelines.cli import main as cli_main
from powersync_pipelines.config import SiteConfig
from powersync_pipelines.sim.sungrow_sh import SungrowSimulator


def demo_site_on(demo_site: SiteConfig, port: int) -> dict[str, Any]:
    """The demo site as sites-file data, its battery on the simulator's ``port``."""
    site = json.loads(demo_site.model_dump_json(exclude={"base_dir"}, exclude_none=True))
    site["battery"]["port"] = port
    return site


def write_sites(tmp_path: Path, *sites: dict[str, Any]) -> str:
    path = tmp_path / "sites.yaml"
    path.write_text(yaml.safe_dump({"sites": list(sites)}))
    return str(path)


@pytest.fixture
def sim() -> Iterator[SungrowSimulator]:
    s = SungrowSimulator(port=0, capacity_kwh=13.5, soc=0.5, max_charge_kw=5.0, max_discharge_kw=5.0)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def sites_file(tmp_path: Path, demo_site: SiteConfig, sim: SungrowSimulator) -> str:
    return write_sites(tmp_path, demo_site_on(demo_site, sim.port))


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    """Run ``powersync *argv`` in process; its exit code and its stdout as JSON."""
    capsys.readouterr()
    rc = cli_main(list(argv))
    return rc, json.loads(capsys.readouterr().out)
