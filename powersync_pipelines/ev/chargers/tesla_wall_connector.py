"""Tesla Wall Connector Gen 3, local status API (reference/ev-chargers-solcast.md §4).

Plain HTTP on port 80, no authentication: ``GET /api/1/vitals`` (``vehicle_connected``, ``contactor_closed``,
``session_energy_wh``, ``grid_v``, ``vehicle_current_a``, ``currentA_a``.., ``voltageA_v``..) and
``GET /api/1/lifetime``. Some firmware drops the JSON's closing brace; it is appended and re-parsed.

Read-only: the Wall Connector has no local current limit, start or stop. Controlling the charge goes through
the car's own API (Tesla Fleet API vehicle commands), which is out of scope here: every write is refused with
that reason, so the planner reports the plan and the site owner sees why it is not applied.
"""

from __future__ import annotations

from typing import Any

from ...config import EvConfig
from ...devices.base import DeviceRejected, Unsupported
from ...storage import HistoryStore
from .base import Charger, ChargerStatus
from .http import JsonHttp

READ_ONLY = ("the Tesla Wall Connector has no local control; charging is controlled through the vehicle's API, "
             "which this product does not drive")


def vitals_power_kw(v: dict[str, Any]) -> float:
    """Σ V x I over the phases; split phase (phase C at about half the grid voltage) counts A and B only."""
    grid_v = float(v.get("grid_v") or 0.0)
    phases = ["A", "B", "C"]
    vc = float(v.get("voltageC_v") or 0.0)
    if grid_v > 0 and abs(vc - grid_v / 2) < 0.15 * grid_v:
        phases = ["A", "B"]
    total = sum(float(v.get(f"voltage{p}_v") or 0.0) * float(v.get(f"current{p}_a") or 0.0) for p in phases)
    return total / 1000.0


class TeslaWallConnector(Charger):
    kind = "tesla_wall_connector"

    def __init__(self, cfg: EvConfig, site_id: str, store: HistoryStore | None = None, *, timeout_s: float = 5.0) -> None:
        super().__init__(cfg, site_id, store)
        self.http = JsonHttp(f"tesla wall connector {cfg.host}", cfg.base_url or f"http://{cfg.host}:{cfg.port or 80}", timeout_s)

    def read_status(self) -> ChargerStatus:
        _, v = self.http.request("GET", "/api/1/vitals", lenient_json=True)
        if not isinstance(v, dict) or "vehicle_connected" not in v:
            raise DeviceRejected("tesla wall connector: vitals without vehicle_connected")
        energy = v.get("session_energy_wh")
        return ChargerStatus(car_connected=bool(v["vehicle_connected"]), charging=bool(v.get("contactor_closed")),
                             power_kw=round(vitals_power_kw(v), 4), current_limit_a=None,
                             session_energy_kwh=None if energy is None else float(energy) / 1000.0,
                             state=f"evse_state {v.get('evse_state')}", raw=v)

    def lifetime(self) -> dict[str, Any]:
        return self.http.request("GET", "/api/1/lifetime", lenient_json=True)[1]

    def _write_current(self, amps: int) -> None:
        raise Unsupported(READ_ONLY)

    def _pause(self) -> None:
        raise Unsupported(READ_ONLY)

    def _resume(self) -> None:
        raise Unsupported(READ_ONLY)

    def close(self) -> None:
        self.http.close()
