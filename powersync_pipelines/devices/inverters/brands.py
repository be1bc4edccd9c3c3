"""The driver for each AC inverter brand of the sites file (``ac_inverter.brand``)."""

from __future__ import annotations

from typing import Any

from ...config import AcInverterConfig
from .base import AcInverter
from .enphase import EnphaseGateway
from .fronius import Fronius
from .goodwe import GoodWe
from .huawei import HuaweiSun2000
from .sungrow_sg import SungrowSG
from .zeversolar import Zeversolar

INVERTERS: dict[str, type[AcInverter]] = {
    "sungrow_sg": SungrowSG,
    "fronius": Fronius,
    "goodwe": GoodWe,
    "huawei": HuaweiSun2000,
    "enphase": EnphaseGateway,
    "zeversolar": Zeversolar,
}
BRANDS = tuple(INVERTERS)


def open_inverter(cfg: AcInverterConfig, **options: Any) -> AcInverter:
    """The driver for ``cfg.brand`` (nothing is connected until the first call)."""
    driver = INVERTERS.get(cfg.brand)
    if driver is None:
        raise ValueError(f"unknown AC inverter brand {cfg.brand!r} (expected one of {', '.join(BRANDS)})")
    return driver(cfg, **options)
