"""The decision core's tests run against the same simulators as the drivers' tests."""

from ..demo_peer import sim, sites_file
from ..devices.conftest import (
    make_site,
    sigen_sim,
    sigen_site,
    sungrow_sim,
    sungrow_site,
    tesla_sim,
    tesla_site,
)

__all__ = ["make_site", "sim", "sites_file", "sigen_sim", "sigen_site", "sungrow_sim", "sungrow_site", "tesla_sim", "tesla_site"]
