"""EV chargers behind one interface (``base.Charger``): OCPP 1.6J (through the central system), Wallbox and
Easee cloud, Tesla Wall Connector (local, read-only) and a generic switch + amps charger (Modbus or HTTP)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Charger, ChargerError, ChargerStatus

if TYPE_CHECKING:
    from ...config import EvConfig
    from ...storage import HistoryStore

__all__ = ["Charger", "ChargerError", "ChargerStatus", "open_charger"]


def open_charger(cfg: EvConfig, site_id: str, store: HistoryStore | None = None) -> Charger:
    """The driver for ``cfg.charger``."""
    if cfg.charger == "ocpp":
        from .ocpp import OcppCharger

        return OcppCharger(cfg, site_id, store)
    if cfg.charger == "wallbox":
        from .wallbox import Wallbox

        return Wallbox(cfg, site_id, store)
    if cfg.charger == "easee":
        from .easee import Easee

        return Easee(cfg, site_id, store)
    if cfg.charger == "tesla_wall_connector":
        from .tesla_wall_connector import TeslaWallConnector

        return TeslaWallConnector(cfg, site_id, store)
    from .generic import GenericCharger

    return GenericCharger(cfg, site_id, store)
