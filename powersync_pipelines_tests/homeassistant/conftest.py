"""A real broker per test, the demo site on a simulated Sungrow SH, a sites file pointing at it, a recording
client and the bridge serving the demo site."""

from __future__ import annotations

import pytest

from ..demo_peer import sim, sites_file
from .broker import BrokerProcess, Recorder
from .serving import serving

__all__ = ["bridge", "broker", "rec", "sim", "sites_file"]


@pytest.fixture
def broker():
    b = BrokerProcess()
    b.start()
    yield b
    b.close()


@pytest.fixture
def rec(broker):
    r = Recorder(broker.port)
    yield r
    r.close()


@pytest.fixture
def bridge(broker, sites_file, rec):
    """The bridge serving the demo site in a thread, as ``powersync ha serve`` runs it."""
    with serving(broker, sites_file, rec) as b:
        yield b
