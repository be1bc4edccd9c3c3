"""A simulated OCPP 1.6J charge point with a car that draws what it is allowed.

It connects to ``ws://HOST:PORT/<charge_point_id>`` (subprotocol ``ocpp1.6``), boots, reports its connector,
and when a car is plugged in authorises and starts a transaction itself (free vend, as most home chargers).
The car draws ``min(offered, its own max)`` amps; offered is the lowest of the charge point's rating and the
charging profiles in force (ChargePointMaxProfile, then TxProfile for the running transaction, else
TxDefaultProfile), W converted to A at its voltage and phases; below 6 A nothing flows (SuspendedEVSE), a full
car takes nothing (SuspendedEV). MeterValues carry energy (Wh), power (W), current drawn and offered (A) and the
car's SoC (%), every ``MeterValueSampleInterval`` seconds of simulated time.

It answers SetChargingProfile (TxProfile needs a running transaction; ChargePointMaxProfile only on connector
0), ClearChargingProfile, GetCompositeSchedule (the limit in force), RemoteStart/RemoteStopTransaction,
ChangeConfiguration and GetConfiguration. ``history`` keeps every (time, offered, drawn) for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from ocpp.routing import on
from ocpp.v16 import ChargePoint as OcppChargePoint
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import connect

log = logging.getLogger(__name__)

IEC_MIN_A = 6.0


@dataclass
class SimCar:
    battery_kwh: float = 60.0
    soc: float = 0.3
    max_amps: float = 32.0  # the car's on-board charger
    efficiency: float = 0.9

    @property
    def full(self) -> bool:
        return self.soc >= 0.9999


@dataclass
class _Profile:
    profile_id: int
    stack_level: int
    purpose: str
    connector_id: int
    transaction_id: int | None
    unit: str
    limit: float
    number_phases: int


@dataclass
class _State:
    plugged: bool = True
    transaction_id: int | None = None
    meter_wh: float = 0.0
    offered_a: float = 0.0
    drawn_a: float = 0.0
    status: str = "Available"
    profiles: list[_Profile] = field(default_factory=list)
    config: dict[str, str] = field(default_factory=lambda: {"MeterValueSampleInterval": "60",
                                                            "MeterValuesSampledData": "Energy.Active.Import.Register",
                                                            "ChargeProfileMaxStackLevel": "8",
                                                            "ChargingScheduleAllowedChargingRateUnit": "Current,Power"})


def _iso(t: pd.Timestamp | None = None) -> str:
    t = t if t is not None else pd.Timestamp.now(tz="UTC")
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Protocol(OcppChargePoint):
    """The charge point side of the protocol; ``sim`` holds the physics and state."""

    def __init__(self, cp_id: str, connection: Any, sim: SimulatedChargePoint) -> None:
        super().__init__(cp_id, connection, response_timeout=sim.call_timeout_s)
        self.sim = sim

    @on(Action.set_charging_profile)
    async def on_set_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any], **kw: Any) -> call_result.SetChargingProfile:
        st, p = self.sim.state, cs_charging_profiles
        purpose = p["charging_profile_purpose"]
        if purpose == "ChargePointMaxProfile" and connector_id != 0:
            return call_result.SetChargingProfile(status="Rejected")
        if purpose == "TxProfile":
            if connector_id < 1 or st.transaction_id is None:
                return call_result.SetChargingProfile(status="Rejected")
            if p.get("transaction_id") not in (None, st.transaction_id):
                return call_result.SetChargingProfile(status="Rejected")
        self.sim.install(p, connector_id, st.transaction_id if purpose == "TxProfile" else None)
        return call_result.SetChargingProfile(status="Accepted")

    @on(Action.clear_charging_profile)
    async def on_clear(self, **kw: Any) -> call_result.ClearChargingProfile:
        st = self.sim.state
        keep = [p for p in st.profiles if not (
            (kw.get("id") is None or p.profile_id == kw["id"])
            and (kw.get("connector_id") is None or p.connector_id == kw["connector_id"])
            and (kw.get("charging_profile_purpose") is None or p.purpose == kw["charging_profile_purpose"])
            and (kw.get("stack_level") is None or p.stack_level == kw["stack_level"]))]
        removed = len(st.profiles) - len(keep)
        st.profiles = keep
        self.sim.recompute()
        return call_result.ClearChargingProfile(status="Accepted" if removed else "Unknown")

    @on(Action.get_composite_schedule)
    async def on_composite(self, connector_id: int, duration: int, charging_rate_unit: str | None = None, **kw: Any) -> call_result.GetCompositeSchedule:
        unit = charging_rate_unit or "A"
        amps = self.sim.allowed_amps()
        limit = amps if unit == "A" else amps * self.sim.voltage * self.sim.phases
        return call_result.GetCompositeSchedule(
            status="Accepted", connector_id=connector_id, schedule_start=_iso(),
            charging_schedule={"duration": duration, "charging_rate_unit": unit,
                               "charging_schedule_period": [{"start_period": 0, "limit": round(limit, 1)}]})

    @on(Action.remote_start_transaction)
    async def on_remote_start(self, id_tag: str, connector_id: int | None = None, charging_profile: dict[str, Any] | None = None, **kw: Any) -> call_result.RemoteStartTransaction:
        st = self.sim.state
        if not st.plugged or st.transaction_id is not None or connector_id not in (None, 1):
            return call_result.RemoteStartTransaction(status="Rejected")
        asyncio.get_running_loop().create_task(self.sim.start_transaction(id_tag, charging_profile))
        return call_result.RemoteStartTransaction(status="Accepted")

    @on(Action.remote_stop_transaction)
    async def on_remote_stop(self, transaction_id: int, **kw: Any) -> call_result.RemoteStopTransaction:
        if transaction_id != self.sim.state.transaction_id:
            return call_result.RemoteStopTransaction(status="Rejected")
        asyncio.get_running_loop().create_task(self.sim.stop_transaction("Remote"))
        return call_result.RemoteStopTransaction(status="Accepted")

    @on(Action.change_configuration)
    async def on_change_configuration(self, key: str, value: str, **kw: Any) -> call_result.ChangeConfiguration:
        st = self.sim.state
        if key not in st.config:
            return call_result.ChangeConfiguration(status="NotSupported")
        if key == "MeterValueSampleInterval":
            try:
                if int(value) < 0:
                    raise ValueError
            except ValueError:
                return call_result.ChangeConfiguration(status="Rejected")
        st.config[key] = value
        return call_result.ChangeConfiguration(status="Accepted")

    @on(Action.get_configuration)
    async def on_get_configuration(self, key: list[str] | None = None, **kw: Any) -> call_result.GetConfiguration:
        st = self.sim.state
        keys = key or list(st.config)
        known = [{"key": k, "readonly": False, "value": st.config[k]} for k in keys if k in st.config]
        unknown = [k for k in keys if k not in st.config]
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)


class SimulatedChargePoint:
    """One charge point (connector 1) with a car; ``start_in_thread()`` / ``stop()`` or ``await run()``."""

    def __init__(self, url: str, *, car: SimCar | None = None, plugged: bool = True, max_amps: float = 32.0,
                 phases: int = 1, voltage: float = 230.0, id_tag: str = "sim-car", time_scale: float = 1.0,
                 tick_s: float = 0.2, meter_interval_s: float | None = None, vendor: str = "PowerSync",
                 model: str = "SimCP", call_timeout_s: float = 30.0) -> None:
        self.url = url
        self.charge_point_id = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        if not self.charge_point_id or "://" in self.charge_point_id:
            raise ValueError(f"simulated charge point: the URL must end with the charge point id, got {url!r}")
        self.car = car or SimCar()
        self.max_amps, self.phases, self.voltage = float(max_amps), int(phases), float(voltage)
        self.id_tag, self.time_scale, self.tick_s = id_tag, float(time_scale), float(tick_s)
        self.meter_interval_override = meter_interval_s
        self.vendor, self.model, self.call_timeout_s = vendor, model, call_timeout_s
        self.state = _State(plugged=plugged)
        self.history: list[tuple[float, float, float]] = []  # (simulated s, offered A, drawn A)
        self.booted = threading.Event()
        self.connected = threading.Event()
        self.protocol: _Protocol | None = None
        self._listener: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._ws: Any = None
        self._sim_s = 0.0
        self._lock = threading.RLock()

    # -- physics -----------------------------------------------------------------------------------------
    def install(self, p: dict[str, Any], connector_id: int, tx: int | None) -> None:
        sched = p["charging_schedule"]
        period = sched["charging_schedule_period"][0]
        prof = _Profile(int(p["charging_profile_id"]), int(p["stack_level"]), p["charging_profile_purpose"], connector_id,
                        tx, sched["charging_rate_unit"], float(period["limit"]), int(period.get("number_phases") or 3))
        with self._lock:
            st = self.state
            st.profiles = [q for q in st.profiles if not (q.profile_id == prof.profile_id or (
                q.purpose == prof.purpose and q.stack_level == prof.stack_level and q.connector_id == prof.connector_id))]
            st.profiles.append(prof)
        self.recompute()

    def _amps(self, p: _Profile) -> float:
        return p.limit if p.unit == "A" else p.limit / (self.voltage * self.phases)

    def allowed_amps(self) -> float:
        """The current the charge point offers now (A per phase)."""
        with self._lock:
            st = self.state
            limits = [self.max_amps]
            cp_max = [p for p in st.profiles if p.purpose == "ChargePointMaxProfile"]
            if cp_max:
                limits.append(self._amps(max(cp_max, key=lambda p: p.stack_level)))
            tx = [p for p in st.profiles if p.purpose == "TxProfile" and st.transaction_id is not None
                  and p.transaction_id == st.transaction_id]
            default = [p for p in st.profiles if p.purpose == "TxDefaultProfile"]
            chosen = tx or default
            if chosen:
                limits.append(self._amps(max(chosen, key=lambda p: p.stack_level)))
            return max(0.0, min(limits))

    def recompute(self) -> None:
        with self._lock:
            st = self.state
            offered = self.allowed_amps() if st.transaction_id is not None else 0.0
            offered = offered if offered >= IEC_MIN_A else 0.0
            st.offered_a = offered
            st.drawn_a = 0.0 if (self.car.full or not st.plugged) else min(offered, self.car.max_amps)

    def _status_now(self) -> str:
        st = self.state
        if not st.plugged:
            return "Available"
        if st.transaction_id is None:
            return "Preparing"
        if st.offered_a <= 0:
            return "SuspendedEVSE"
        if st.drawn_a <= 0:
            return "SuspendedEV"
        return "Charging"

    def _advance(self, sim_dt_s: float) -> None:
        with self._lock:
            self.recompute()
            st = self.state
            kw = st.drawn_a * self.voltage * self.phases / 1000.0
            wh = kw * 1000.0 * sim_dt_s / 3600.0
            room_wh = (1.0 - self.car.soc) * self.car.battery_kwh * 1000.0 / self.car.efficiency
            wh = min(wh, max(0.0, room_wh))
            st.meter_wh += wh
            self.car.soc = min(1.0, self.car.soc + wh * self.car.efficiency / 1000.0 / self.car.battery_kwh)
            self._sim_s += sim_dt_s
            self.history.append((self._sim_s, st.offered_a, st.drawn_a))
            del self.history[:-5000]

    # -- protocol flows -----------------------------------------------------------------------------------
    async def _send(self, payload: Any) -> Any:
        """A CALL; if the connection drops while it waits, fail at once (and reconnect) instead of timing out."""
        assert self.protocol is not None and self._listener is not None
        pending = asyncio.ensure_future(self.protocol.call(payload))
        done, _ = await asyncio.wait({pending, self._listener}, return_when=asyncio.FIRST_COMPLETED)
        if pending in done:
            return pending.result()
        pending.cancel()
        raise ConnectionError("the central system closed the connection")

    async def _status(self, force: bool = False) -> None:
        s = self._status_now()
        if force or s != self.state.status:
            self.state.status = s
            await self._send(call.StatusNotification(connector_id=1, error_code="NoError", status=s, timestamp=_iso()))

    async def start_transaction(self, id_tag: str, profile: dict[str, Any] | None = None) -> None:
        auth = await self._send(call.Authorize(id_tag=id_tag))
        if auth is None or auth.id_tag_info.get("status") != "Accepted":
            log.warning("%s: id tag %s not accepted", self.charge_point_id, id_tag)
            return
        r = await self._send(call.StartTransaction(connector_id=1, id_tag=id_tag, meter_start=int(self.state.meter_wh),
                                                   timestamp=_iso()))
        if r is None:
            return
        with self._lock:
            self.state.transaction_id = int(r.transaction_id)
        if profile is not None:
            self.install(profile, 1, self.state.transaction_id)
        self.recompute()
        await self._status()

    async def stop_transaction(self, reason: str = "Local") -> None:
        with self._lock:
            tx = self.state.transaction_id
            if tx is None:
                return
            self.state.transaction_id = None
            self.state.profiles = [p for p in self.state.profiles if p.purpose != "TxProfile"]
        self.recompute()
        await self._send(call.StopTransaction(meter_stop=int(self.state.meter_wh), timestamp=_iso(), transaction_id=tx,
                                              reason=reason, id_tag=self.id_tag))
        await self._status()

    async def _meter_values(self) -> None:
        st = self.state
        sampled = [
            {"value": f"{st.meter_wh:.1f}", "measurand": "Energy.Active.Import.Register", "unit": "Wh", "context": "Sample.Periodic"},
            {"value": f"{st.drawn_a * self.voltage * self.phases:.1f}", "measurand": "Power.Active.Import", "unit": "W"},
            {"value": f"{st.drawn_a:.1f}", "measurand": "Current.Import", "unit": "A"},
            {"value": f"{st.offered_a:.1f}", "measurand": "Current.Offered", "unit": "A"},
            {"value": f"{self.car.soc * 100:.1f}", "measurand": "SoC", "unit": "Percent"},
        ]
        await self._send(call.MeterValues(connector_id=1, transaction_id=st.transaction_id,
                                          meter_value=[{"timestamp": _iso(), "sampled_value": sampled}]))

    async def _session(self, ws: Any) -> None:
        self._ws = ws
        self.protocol = _Protocol(self.charge_point_id, ws, self)
        listener = self._listener = asyncio.get_running_loop().create_task(self.protocol.start())
        try:
            boot = await self._send(call.BootNotification(charge_point_vendor=self.vendor, charge_point_model=self.model,
                                                          firmware_version="sim-1"))
            heartbeat_s = float(getattr(boot, "interval", 300) or 300)
            self.booted.set()
            await self._status(force=True)
            if self.state.plugged and self.state.transaction_id is None:
                await self.start_transaction(self.id_tag)
            last_meter = last_beat = time.monotonic()
            while not self._stopping:
                await asyncio.sleep(self.tick_s)
                if listener.done():
                    raise ConnectionError("the central system closed the connection")
                self._advance(self.tick_s * self.time_scale)
                await self._status()
                now = time.monotonic()
                interval = self.meter_interval_override or float(self.state.config["MeterValueSampleInterval"] or 0)
                if interval > 0 and (now - last_meter) * self.time_scale >= interval:
                    last_meter = now
                    await self._meter_values()
                if (now - last_beat) * self.time_scale >= heartbeat_s:
                    last_beat = now
                    await self._send(call.Heartbeat())
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener

    async def run(self) -> None:
        """Connect (and reconnect with backoff, 1 s doubling to 30 s) until ``stop()``."""
        delay = 1.0
        while not self._stopping:
            try:
                async with connect(self.url, subprotocols=["ocpp1.6"], open_timeout=10) as ws:
                    self.connected.set()
                    delay = 1.0
                    await self._session(ws)
            except Exception as exc:  # any drop is reported, then retried
                if self._stopping:
                    break
                log.warning("%s: no connection to %s (%s: %s); retrying in %.0f s",
                            self.charge_point_id, self.url, type(exc).__name__, exc, delay)
            finally:
                self.connected.clear()
            if not self._stopping:
                await asyncio.sleep(delay)
                delay = min(30.0, delay * 2)

    # -- control from tests and the CLI -------------------------------------------------------------------
    def _submit(self, coro: Any) -> None:
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def plug_in(self) -> None:
        async def go() -> None:
            self.state.plugged = True
            await self._status()
            await self.start_transaction(self.id_tag)

        self._submit(go())

    def reboot(self) -> None:
        """A soft reset: the transaction stops (reason ``SoftReset``), every charging profile is forgotten, the
        connection drops, and the charge point comes back with a new BootNotification (and, plugged, a new
        transaction) when it reconnects."""
        async def go() -> None:
            await self.stop_transaction("SoftReset")
            with self._lock:
                self.state.profiles = []
            self.recompute()
            self.booted.clear()
            if self._ws is not None:
                await self._ws.close()

        self._submit(go())

    def unplug(self) -> None:
        async def go() -> None:
            await self.stop_transaction("EVDisconnected")
            self.state.plugged = False
            await self._status()

        self._submit(go())

    def start_in_thread(self) -> None:
        def main() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self.run())
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=main, name=f"sim-ocpp-{self.charge_point_id}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        if self._thread is not None:
            self._thread.join(15)
