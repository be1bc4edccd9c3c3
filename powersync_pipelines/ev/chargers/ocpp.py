"""An OCPP charge point as a ``Charger``, from the planner's side of the ``ev_setpoints`` hand-off.

The websocket belongs to the central system (``powersync ocpp serve``, another process), so a write is a
request in ``ev_setpoints`` answered by the central system (which also records the command it sent, for the
owner the arbiter granted the write to: ``requested_by``); the status is what the charge point last reported,
read from DuckDB.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from ...config import EvConfig
from ...devices.base import CommandRefused, CommandResult, DeviceUnavailable, VerifyError
from ...devices.grants import grant_owner
from ...storage import HistoryStore
from .. import handoff
from .base import Charger, ChargerStatus

STALE_AFTER = pd.Timedelta(minutes=15)


def _owner() -> str:
    """Whom the write is made for: the arbiter's grant, else ``ev`` (an unarbitrated driver in a test or a tool)."""
    return grant_owner() or "ev"


class OcppCharger(Charger):
    kind = "ocpp"

    def __init__(self, cfg: EvConfig, site_id: str, store: HistoryStore | None = None, *, wait_s: float = 30.0,
                 poll_s: float = 0.5) -> None:
        super().__init__(cfg, site_id, store)
        if store is None:
            raise ValueError("an OCPP charger needs the history store (the hand-off to the central system)")
        self.hstore: HistoryStore = store
        self.cp = str(cfg.charge_point_id)
        self.connector = cfg.connector_id
        self.wait_s, self.poll_s = wait_s, poll_s

    def read_status(self) -> ChargerStatus:
        s = self.hstore
        cp = s.query("SELECT connected, last_seen FROM ocpp_charge_points WHERE charge_point_id = ?", [self.cp])
        if cp.empty:  # not an error: until the charge point first connects there is no car to plan for
            return ChargerStatus(car_connected=False, charging=False, power_kw=None, current_limit_a=None,
                                 session_energy_kwh=None, state="NotYetConnected",
                                 raw={"connected": False, "last_seen": None, "transaction_id": None})
        st = s.query("SELECT status FROM ocpp_connector_status WHERE charge_point_id = ? AND connector_id = ?",
                     [self.cp, self.connector])
        status = str(st.iloc[0, 0]) if len(st) else "Unknown"
        tx = s.query("SELECT transaction_id FROM ocpp_transactions WHERE charge_point_id = ? AND connector_id = ? "
                     "AND status = 'active' ORDER BY started_at DESC LIMIT 1", [self.cp, self.connector])
        txid = int(tx.iloc[0, 0]) if len(tx) else None
        mv = s.query("SELECT DISTINCT ON (measurand) measurand, value FROM ocpp_meter_values "
                     "WHERE charge_point_id = ? AND connector_id = ? AND phase = '' ORDER BY measurand, ts DESC",
                     [self.cp, self.connector])
        last = dict(zip(mv["measurand"], mv["value"], strict=True))
        energy = None
        if txid is not None:
            e = s.query("SELECT energy_kwh FROM ev_session_energy WHERE transaction_id = ?", [txid])
            energy = float(e.iloc[0, 0]) if len(e) else None
        power = last.get("Power.Active.Import")
        return ChargerStatus(
            car_connected=status in ("Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing"),
            charging=status == "Charging", power_kw=None if power is None else power / 1000.0,
            current_limit_a=last.get("Current.Offered"), session_energy_kwh=energy, state=status,
            raw={"connected": bool(cp.iloc[0, 0]), "last_seen": str(cp.iloc[0, 1]), "transaction_id": txid})

    def _handoff(self, name: str, params: dict, request: Callable[[], str]) -> CommandResult:
        def go() -> None:
            sid = request()
            self._wrote("setpoint_id", sid)
            sp = handoff.wait_for_outcome(self.hstore, sid, self.wait_s, self.poll_s)
            self._read_back("status", sp.status)
            self._read_back("outcome", sp.outcome)
            if sp.status in ("pending", "sent"):
                raise DeviceUnavailable(f"ocpp {self.cp}: the central system has not answered within {self.wait_s:g} s "
                                        "(is `powersync ocpp serve` running and the charge point connected?)")
            if sp.status == "failed":
                raise VerifyError(f"ocpp {self.cp}: {sp.outcome}")
            if sp.status in ("rejected", "expired", "superseded"):
                raise CommandRefused(f"ocpp {self.cp}: {sp.status}: {sp.outcome}")

        # the central system records what it sent in `commands`; here only the result is returned
        store, self.store = self.store, None
        try:
            return self._command(name, params, go)
        finally:
            self.store = store

    def set_current_limit(self, amps: float) -> CommandResult:
        """Whole amps within the charger, sent in the site's ``rate_unit`` (A per phase, or the same power in W)."""
        a = self.clamp(amps) if amps >= 0 else amps
        if self.cfg.rate_unit == "W" and a >= 0:
            value, unit = a * self.cfg.voltage * self.cfg.phases, "W"
        else:
            value, unit = float(a), "A"
        return self._handoff("set_current_limit", {"amps": amps}, lambda: handoff.request_setpoint(
            self.hstore, self.site_id, self.cp, value, unit, connector_id=self.connector, requested_by=_owner()))

    def set_power(self, kw: float) -> CommandResult:
        return self._handoff("set_power", {"kw": kw}, lambda: handoff.request_setpoint(
            self.hstore, self.site_id, self.cp, max(0.0, min(kw, self.cfg.max_kw)) * 1000.0, "W",
            connector_id=self.connector, requested_by=_owner()))

    def start(self) -> CommandResult:
        return self._handoff("start", {}, lambda: handoff.request_command(self.hstore, self.site_id, self.cp, "start",
                                                                          connector_id=self.connector,
                                                                          requested_by=_owner()))

    def stop(self) -> CommandResult:
        return self._handoff("stop", {}, lambda: handoff.request_command(self.hstore, self.site_id, self.cp, "stop",
                                                                         connector_id=self.connector,
                                                                         requested_by=_owner()))

    def _write_current(self, amps: int) -> None:  # writes go through the hand-off (set_current_limit)
        raise CommandRefused("ocpp: use set_current_limit")

    def _pause(self) -> None:
        raise CommandRefused("ocpp: use set_current_limit(0)")

    def _resume(self) -> None:
        raise CommandRefused("ocpp: use start()")
