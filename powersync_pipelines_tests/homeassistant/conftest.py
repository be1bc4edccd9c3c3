"""A real broker per test, the demo site on a simulated Sungrow SH, and a sites file pointing at it."""

from __future__ import annotations

import pytest

from ..demo_peer import sim, sites_file
from .broker import BrokerProcess

__all__ = ["broker", "sim", "sites_file"]


@pytest.fixture
def broker():
    b = BrokerProcess()
    b.start()
    yield b
    b.close()
