"""An OCPP 1.6J central system on ``websockets``, with the ``ocpp`` library doing the framing and schemas.

Charge points connect to ``ws://HOST:PORT/<charge_point_id>`` (any prefix; the last path segment is the
identity) with subprotocol ``ocpp1.6``. An identity no site declares gets HTTP 404; a client that does not
speak ``ocpp1.6`` is closed. Everything a charge point says is stored in DuckDB (``storage/schema_ev.py``):
BootNotification, Heartbeat, StatusNotification, Authorize, Start/StopTransaction, MeterValues.

Setpoints arrive through the ``ev_setpoints`` hand-off (``ev/handoff.py``), polled every ``poll_s``:

* ``limit``: a ``SetChargingProfile``. With a transaction running: TxProfile bound to it. With a car plugged
  in but no transaction: ``RemoteStartTransaction`` carrying the TxProfile. With no car: TxDefaultProfile on
  the connector, for the next session. The value is clamped to the charger's max, 0 below its min (IEC 61851:
  nothing between 0 and 6 A), floored to one decimal (the schema's ``multipleOf 0.1``). A limit of 0 pauses.
  "Accepted" is read back with ``GetCompositeSchedule``: ``applied`` when the charge point reports the
  limit, ``failed`` when it reports another, ``accepted`` when it cannot say.
* ``start`` / ``stop`` / ``clear_profile``: RemoteStart/RemoteStopTransaction, ClearChargingProfile.

After every BootNotification the central system sets the meter sampling (``MeterValueSampleInterval``,
``MeterValuesSampledData``) and asks ``resend`` (the control layer's arbiter, ``control.ev.arbitrated_resend``)
to re-send the last applied limit as its owner: charge points forget profiles on reboot, and the owner's hold
decides whether that limit still stands (refused when its lease lapsed or another owner holds the charger).
Without ``resend`` nothing is re-sent: the next planning cycle sets the limit.
Every command is recorded in ``commands`` (device_kind ``ocpp``) with what was written and read back.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from ocpp.routing import on
from ocpp.v16 import ChargePoint as OcppChargePoint
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action, AuthorizationStatus, RegistrationStatus
from websockets.asyncio.server import Server, ServerConnection, serve

from ..config import EvConfig, SitesFile
from ..owners import OWNERS
from ..storage import HistoryStore, upsert_sql
from . import handoff

log = logging.getLogger(__name__)

SUBPROTOCOL = "ocpp1.6"
CAR_PRESENT = ("Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing")
SAMPLED = "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Current.Offered,SoC"
SCALE = {"kWh": ("Wh", 1000.0), "kW": ("W", 1000.0), "kvarh": ("varh", 1000.0), "kvar": ("var", 1000.0)}
TX_PROFILE_ID, TX_DEFAULT_PROFILE_ID = 1, 2
# (site id, the last applied limit) -> (re-sent?, one line why); runs the re-send itself when it is allowed
Resend = Callable[[str, handoff.Setpoint], tuple[bool, str]]

_STATUS_COLUMNS = ["charge_point_id", "connector_id", "status", "error_code", "info", "ts", "received_at"]


@dataclass(frozen=True)
class ChargerSpec:
    """A charge point a site declares: who it belongs to and what it may be told."""

    charge_point_id: str
    site_id: str
    cfg: EvConfig

    def clamp(self, value: float, unit: str) -> float:
        """The limit to send: at most the charger's max, 0 below its min, floored to 0.1."""
        top, bottom = (self.cfg.max_amps, self.cfg.min_amps) if unit == "A" else (self.cfg.max_kw * 1000, self.cfg.min_kw * 1000)
        v = min(float(value), top)
        if v < bottom:
            return 0.0
        return math.floor(v * 10 + 1e-9) / 10


def chargers_of(sites: SitesFile | None) -> dict[str, ChargerSpec]:
    out: dict[str, ChargerSpec] = {}
    for site in sites.sites if sites else []:
        if site.ev is not None and site.ev.charger == "ocpp" and site.ev.charge_point_id:
            out[site.ev.charge_point_id] = ChargerSpec(site.ev.charge_point_id, site.id, site.ev)
    return out


def _ts(v: Any) -> pd.Timestamp:
    try:
        t = pd.Timestamp(v)
    except (TypeError, ValueError):
        return pd.Timestamp.now(tz="UTC")
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _iso(t: pd.Timestamp) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def meter_rows(cp_id: str, connector_id: int, transaction_id: int | None, meter_value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """MeterValues samples as ``ocpp_meter_values`` rows: values parsed, kWh/kW scaled to Wh/W, defaults filled
    (measurand Energy.Active.Import.Register, unit Wh). A sample whose value is not a number is skipped."""
    rows = []
    for mv in meter_value or []:
        ts = _ts(mv.get("timestamp"))
        for sv in mv.get("sampled_value") or []:
            try:
                value = float(sv.get("value"))
            except (TypeError, ValueError):
                log.warning("%s: meter value %r is not a number; skipped", cp_id, sv.get("value"))
                continue
            if not math.isfinite(value):
                continue
            measurand = sv.get("measurand") or "Energy.Active.Import.Register"
            unit = sv.get("unit") or ("Wh" if measurand.startswith("Energy") else "")
            unit, factor = SCALE.get(unit, (unit, 1.0))
            rows.append({"charge_point_id": cp_id, "connector_id": int(connector_id), "transaction_id": transaction_id,
                         "ts": ts, "measurand": measurand, "phase": sv.get("phase") or "", "context": sv.get("context"),
                         "unit": unit, "value": value * factor})
    return rows


class _Link(OcppChargePoint):
    """One connected charge point: the handlers for what it sends and the setpoint pump for what it gets."""

    def __init__(self, spec: ChargerSpec, connection: ServerConnection, cs: CentralSystem) -> None:
        super().__init__(spec.charge_point_id, connection, response_timeout=cs.call_timeout_s)
        self.spec, self.cs = spec, cs
        self.booted = asyncio.Event()
        self.connector_status: dict[int, str] = {}
        self.transactions: dict[int, int] = {}  # connector -> active transaction id

    # -- storage helpers --------------------------------------------------------------------------------
    async def _db(self, fn: Any, *args: Any, **kw: Any) -> Any:
        async with self.cs.db_lock:
            return await asyncio.to_thread(fn, *args, **kw)

    def _seen(self, con: Any, now: pd.Timestamp, **cols: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in cols)
        con.execute(f"UPDATE ocpp_charge_points SET last_seen = ?, connected = TRUE{', ' + sets if sets else ''} "
                    "WHERE charge_point_id = ?", [now, *cols.values(), self.id])

    def _write(self, sql_fn: Any) -> None:
        with self.cs.store.connect() as con:
            con.execute("BEGIN")
            sql_fn(con)
            con.execute("COMMIT")

    def restore_state(self) -> None:
        """Running transactions and connector states as last stored: a restarted central system must still bind
        profiles to the transaction the charge point is in."""
        store = self.cs.store
        tx = store.query("SELECT connector_id, transaction_id FROM ocpp_transactions WHERE charge_point_id = ? "
                         "AND status = 'active' ORDER BY started_at", [self.id])
        self.transactions = {int(c): int(t) for c, t in zip(tx["connector_id"], tx["transaction_id"], strict=True)}
        st = store.query("SELECT connector_id, status FROM ocpp_connector_status WHERE charge_point_id = ?", [self.id])
        self.connector_status = {int(c): str(v) for c, v in zip(st["connector_id"], st["status"], strict=True)}

    # -- from the charge point --------------------------------------------------------------------------
    @on(Action.boot_notification)
    async def on_boot(self, charge_point_vendor: str, charge_point_model: str, **kw: Any) -> call_result.BootNotification:
        now = pd.Timestamp.now(tz="UTC")

        def w(con: Any) -> None:
            con.execute(
                "INSERT INTO ocpp_charge_points VALUES (?, ?, ?, ?, ?, ?, 'Accepted', TRUE, ?, ?, ?, NULL) "
                "ON CONFLICT (charge_point_id) DO UPDATE SET site_id = excluded.site_id, vendor = excluded.vendor, "
                "model = excluded.model, serial_number = excluded.serial_number, "
                "firmware_version = excluded.firmware_version, boot_status = 'Accepted', connected = TRUE, "
                "last_seen = excluded.last_seen, last_boot = excluded.last_boot",
                [self.id, self.spec.site_id, charge_point_vendor, charge_point_model,
                 kw.get("charge_point_serial_number") or kw.get("charge_box_serial_number"), kw.get("firmware_version"),
                 now, now, now])

        await self._db(self._write, w)
        if not self.booted.is_set():
            self.booted.set()
        asyncio.get_running_loop().create_task(self._after_boot())
        return call_result.BootNotification(current_time=_iso(now), interval=self.cs.heartbeat_s,
                                            status=RegistrationStatus.accepted)

    @on(Action.heartbeat)
    async def on_heartbeat(self, **kw: Any) -> call_result.Heartbeat:
        now = pd.Timestamp.now(tz="UTC")
        await self._db(self._write, lambda con: self._seen(con, now, last_heartbeat=now))
        return call_result.Heartbeat(current_time=_iso(now))

    @on(Action.status_notification)
    async def on_status(self, connector_id: int, error_code: str, status: str, **kw: Any) -> call_result.StatusNotification:
        now = pd.Timestamp.now(tz="UTC")
        self.connector_status[int(connector_id)] = status
        ts = _ts(kw["timestamp"]) if kw.get("timestamp") else now

        def w(con: Any) -> None:
            con.execute(upsert_sql("ocpp_status", _STATUS_COLUMNS, ["charge_point_id", "connector_id", "received_at"]),
                        [self.id, int(connector_id), status, error_code, kw.get("info"), ts, now])
            self._seen(con, now)

        await self._db(self._write, w)
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, id_tag: str, **kw: Any) -> call_result.Authorize:
        now = pd.Timestamp.now(tz="UTC")
        await self._db(self._write, lambda con: self._seen(con, now))
        return call_result.Authorize(id_tag_info={"status": self.cs.authorize(id_tag)})

    @on(Action.start_transaction)
    async def on_start(self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **kw: Any) -> call_result.StartTransaction:
        now = pd.Timestamp.now(tz="UTC")
        holder: dict[str, int] = {}

        def w(con: Any) -> None:
            tx = int(con.execute("SELECT coalesce(max(transaction_id), 0) + 1 FROM ocpp_transactions").fetchone()[0])
            con.execute("INSERT INTO ocpp_transactions VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, 'active')",
                        [tx, self.id, self.spec.site_id, int(connector_id), id_tag, float(meter_start), _ts(timestamp)])
            self._seen(con, now)
            holder["tx"] = tx

        await self._db(self._write, w)
        self.transactions[int(connector_id)] = holder["tx"]
        return call_result.StartTransaction(transaction_id=holder["tx"], id_tag_info={"status": self.cs.authorize(id_tag)})

    @on(Action.stop_transaction)
    async def on_stop(self, transaction_id: int, meter_stop: int, timestamp: str, **kw: Any) -> call_result.StopTransaction:
        now = pd.Timestamp.now(tz="UTC")
        rows = []
        for tv in kw.get("transaction_data") or []:
            rows.extend(meter_rows(self.id, next((c for c, t in self.transactions.items() if t == transaction_id), 0),
                                   transaction_id, [tv]))

        def w(con: Any) -> None:
            con.execute("UPDATE ocpp_transactions SET meter_stop_wh = ?, stopped_at = ?, stop_reason = ?, status = 'stopped' "
                        "WHERE transaction_id = ?", [float(meter_stop), _ts(timestamp), kw.get("reason") or "Local",
                                                     int(transaction_id)])
            self._insert_meter(con, rows)
            self._seen(con, now)

        await self._db(self._write, w)
        for c, t in list(self.transactions.items()):
            if t == transaction_id:
                del self.transactions[c]
        tag = kw.get("id_tag")
        return call_result.StopTransaction(id_tag_info={"status": self.cs.authorize(tag)} if tag else None)

    @on(Action.meter_values)
    async def on_meter(self, connector_id: int, meter_value: list[dict[str, Any]], **kw: Any) -> call_result.MeterValues:
        now = pd.Timestamp.now(tz="UTC")
        rows = meter_rows(self.id, connector_id, kw.get("transaction_id"), meter_value)

        def w(con: Any) -> None:
            self._insert_meter(con, rows)
            self._seen(con, now)

        await self._db(self._write, w)
        return call_result.MeterValues()

    @staticmethod
    def _insert_meter(con: Any, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            con.execute(upsert_sql("ocpp_meter_values", list(r), ["charge_point_id", "connector_id", "ts", "measurand",
                                                                   "phase"]), list(r.values()))

    # -- to the charge point ----------------------------------------------------------------------------
    async def _after_boot(self) -> None:
        for key, value in (("MeterValueSampleInterval", str(self.cs.meter_interval_s)), ("MeterValuesSampledData", SAMPLED)):
            try:
                r = await self.call(call.ChangeConfiguration(key=key, value=value))
                log.info("%s: ChangeConfiguration %s=%s -> %s", self.id, key, value, getattr(r, "status", None))
            except TimeoutError:
                log.warning("%s: ChangeConfiguration %s timed out", self.id, key)
        last = await self._db(handoff.latest_applied, self.cs.store, self.id, self.spec.cfg.connector_id)
        if last is None or last.limit_value is None:
            return
        # a rebooted charge point forgot the granted limit: its owner's hold decides whether it stands
        if self.cs.resend is None:
            sent, why = False, "no arbiter to ask: the next planning cycle sets the limit"
        else:
            sent, why = await self._db(self.cs.resend, self.spec.site_id, last)
        log.info("%s: last limit %g %s for %s after the boot: %s (%s)", self.id, last.limit_value, last.unit or "A",
                 last.requested_by, "re-sent" if sent else "not re-sent", why)
        if not sent:
            await self._db(self.cs.store.record_command, self.spec.site_id, "ocpp", "resend_limit", "refused",
                           params={"charge_point_id": self.id, "limit": last.limit_value, "unit": last.unit,
                                   "setpoint_id": last.setpoint_id},
                           error=why, owner=last.requested_by if last.requested_by in OWNERS else None)

    async def pump(self) -> None:
        """Send pending setpoints, one at a time, for as long as the charge point is connected."""
        await self.booted.wait()
        while True:
            pending = await self._db(handoff.claim_pending, self.cs.store, self.id)
            for sp in pending:
                try:
                    await self._apply(sp)
                except Exception as exc:  # one bad answer must not stop the pump; the row says what happened
                    log.exception("%s: setpoint %s failed", self.id, sp.setpoint_id)
                    await self._db(handoff.answer, self.cs.store, sp.setpoint_id, "failed",
                                   f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self.cs.poll_s)

    def _profile(self, purpose: str, value: float, unit: str, tx: int | None) -> dict[str, Any]:
        start = pd.Timestamp.now(tz="UTC").floor("min") - pd.Timedelta(minutes=1)  # in the past: replaces at once
        prof: dict[str, Any] = {
            "charging_profile_id": TX_PROFILE_ID if purpose == "TxProfile" else TX_DEFAULT_PROFILE_ID,
            "stack_level": 0, "charging_profile_purpose": purpose, "charging_profile_kind": "Absolute",
            "charging_schedule": {"charging_rate_unit": unit, "start_schedule": _iso(start),
                                  "charging_schedule_period": [{"start_period": 0, "limit": value,
                                                                "number_phases": self.spec.cfg.phases}]},
        }
        if tx is not None:
            prof["transaction_id"] = tx
        return prof

    async def _apply(self, sp: handoff.Setpoint) -> None:
        c = sp.connector_id
        if sp.command == "limit":
            await self._apply_limit(sp)
            return
        if sp.command == "start":
            r = await self._call(call.RemoteStartTransaction(id_tag=self.cs.id_tag, connector_id=c))
            await self._finish(sp, "remote_start", r, {"connector_id": c}, None)
        elif sp.command == "stop":
            tx = self.transactions.get(c)
            if tx is None:
                await self._finish(sp, "remote_stop", None, {"connector_id": c}, None, refused="no transaction is running")
                return
            r = await self._call(call.RemoteStopTransaction(transaction_id=tx))
            await self._finish(sp, "remote_stop", r, {"transaction_id": tx}, None, tx=tx)
        elif sp.command == "clear_profile":
            r = await self._call(call.ClearChargingProfile(connector_id=c))
            await self._finish(sp, "clear_charging_profile", r, {"connector_id": c}, None)

    async def _call(self, payload: Any) -> Any:
        try:
            return await self.call(payload)
        except TimeoutError:
            return None

    async def _apply_limit(self, sp: handoff.Setpoint) -> None:
        unit = sp.unit or "A"
        value = self.spec.clamp(sp.limit_value or 0.0, unit)
        c = sp.connector_id
        tx = self.transactions.get(c)
        car = self.connector_status.get(c) in CAR_PRESENT
        if tx is not None:
            prof = self._profile("TxProfile", value, unit, tx)
            r = await self._call(call.SetChargingProfile(connector_id=c, cs_charging_profiles=prof))
            kind = "set_charging_profile"
        elif car and value > 0:
            prof = self._profile("TxProfile", value, unit, None)
            r = await self._call(call.RemoteStartTransaction(id_tag=self.cs.id_tag, connector_id=c, charging_profile=prof))
            kind = "remote_start_with_profile"
        else:
            prof = self._profile("TxDefaultProfile", value, unit, None)
            r = await self._call(call.SetChargingProfile(connector_id=c, cs_charging_profiles=prof))
            kind = "set_charging_profile_default"
        readback = None
        if r is not None and getattr(r, "status", None) == "Accepted" and kind != "remote_start_with_profile":
            readback = await self._composite(c, unit)
        await self._finish(sp, kind, r, prof, readback, value=value, tx=tx)

    async def _composite(self, connector_id: int, unit: str) -> float | None:
        r = await self._call(call.GetCompositeSchedule(connector_id=connector_id, duration=300, charging_rate_unit=unit))
        if r is None or getattr(r, "status", None) != "Accepted" or not r.charging_schedule:
            return None
        periods = r.charging_schedule.get("charging_schedule_period") or []
        return float(periods[0]["limit"]) if periods else None

    async def _finish(self, sp: handoff.Setpoint, kind: str, r: Any, written: Any, readback: float | None, *,
                      value: float | None = None, tx: int | None = None, refused: str | None = None) -> None:
        status_word = getattr(r, "status", None)
        if refused:
            status, outcome, cmd_outcome = "rejected", refused, "refused"
        elif r is None:
            status, outcome, cmd_outcome = "failed", f"{kind}: no answer within {self.cs.call_timeout_s:g} s (or a CALLERROR)", "error"
        elif status_word != "Accepted":
            status, outcome, cmd_outcome = "rejected", f"{kind}: charge point answered {status_word}", "error"
        elif value is not None and readback is not None and abs(readback - value) > 0.05:
            status, outcome, cmd_outcome = "failed", f"{kind}: accepted but the composite schedule says {readback:g} {sp.unit}", "verify_failed"
        elif value is not None and readback is not None:
            status, outcome, cmd_outcome = "applied", f"{kind}: {value:g} {sp.unit} applied", "ok"
        else:
            status, outcome, cmd_outcome = "accepted", f"{kind}: accepted" + (f" ({value:g} {sp.unit})" if value is not None else ""), "ok"
        if value is not None and sp.limit_value is not None and value != sp.limit_value:
            c = self.spec.cfg
            rng = f"{c.min_amps:g}-{c.max_amps:g} A" if sp.unit != "W" else f"{c.min_kw * 1000:g}-{c.max_kw * 1000:g} W"
            outcome += f"; asked {sp.limit_value:g}, sent {value:g} (charger range {rng}, 0 pauses)"
        reply = {"status": status_word, "composite_limit": readback}
        await self._db(handoff.answer, self.cs.store, sp.setpoint_id, status, outcome, sent_value=value,
                       transaction_id=tx, profile=written, reply=reply)
        await self._db(self.cs.store.record_command, self.spec.site_id, "ocpp", kind, cmd_outcome,
                       params={"setpoint_id": sp.setpoint_id, "charge_point_id": self.id, "limit": sp.limit_value,
                               "unit": sp.unit, "command": sp.command},
                       written=written, readback=reply, error=None if cmd_outcome == "ok" else outcome,
                       owner=sp.requested_by if sp.requested_by in OWNERS else None)


class CentralSystem:
    """The server. ``await run()`` in an event loop, or ``start_in_thread()`` / ``stop()`` (tests, the CLI)."""

    def __init__(self, store: HistoryStore, sites: SitesFile | None, *, host: str = "127.0.0.1", port: int = 9000,
                 heartbeat_s: int = 300, meter_interval_s: int = 60, poll_s: float = 1.0, call_timeout_s: float = 30.0,
                 id_tag: str = "powersync", accepted_id_tags: set[str] | None = None, resend: Resend | None = None) -> None:
        self.store, self.host, self.port = store, host, port
        self.resend = resend
        self.chargers = chargers_of(sites)
        self.heartbeat_s, self.meter_interval_s = int(heartbeat_s), int(meter_interval_s)
        self.poll_s, self.call_timeout_s = float(poll_s), float(call_timeout_s)
        self.id_tag = id_tag
        self.accepted_id_tags = accepted_id_tags  # None: every tag is accepted (a home charger)
        self.links: dict[str, _Link] = {}
        self._server: Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.db_lock: asyncio.Lock

    def authorize(self, id_tag: str | None) -> str:
        if self.accepted_id_tags is None or id_tag in self.accepted_id_tags:
            return AuthorizationStatus.accepted
        return AuthorizationStatus.invalid

    @staticmethod
    def identity(path: str) -> str:
        return path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]

    def _process_request(self, connection: ServerConnection, request: Any) -> Any:
        cp_id = self.identity(request.path)
        if cp_id not in self.chargers:
            log.warning("OCPP connection for unknown charge point %r refused (404)", cp_id)
            return connection.respond(http.HTTPStatus.NOT_FOUND, f"unknown charge point {cp_id!r}\n")
        return None

    async def _handler(self, connection: ServerConnection) -> None:
        if connection.subprotocol != SUBPROTOCOL:
            await connection.close(1002, "subprotocol ocpp1.6 required")
            return
        spec = self.chargers[self.identity(connection.request.path)]
        link = _Link(spec, connection, self)
        await link._db(link.restore_state)
        old = self.links.get(spec.charge_point_id)
        self.links[spec.charge_point_id] = link
        if old is not None:
            with contextlib.suppress(Exception):
                await old._connection.close()
        pump = asyncio.get_running_loop().create_task(link.pump())
        try:
            await link.start()
        except Exception as exc:  # the connection closed (normally or not)
            log.info("%s disconnected: %s", spec.charge_point_id, type(exc).__name__)
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            if self.links.get(spec.charge_point_id) is link:
                del self.links[spec.charge_point_id]
                now = pd.Timestamp.now(tz="UTC")
                await link._db(link._write, lambda con: con.execute(
                    "UPDATE ocpp_charge_points SET connected = FALSE, last_seen = ? WHERE charge_point_id = ?",
                    [now, spec.charge_point_id]))

    async def run(self, ready: threading.Event | None = None) -> None:
        self.db_lock = asyncio.Lock()
        self.store.migrate()
        async with serve(self._handler, self.host, self.port, subprotocols=[SUBPROTOCOL],
                         process_request=self._process_request) as server:
            self._server = server
            self.port = server.sockets[0].getsockname()[1]
            if ready is not None:
                ready.set()
            await server.serve_forever()

    def start_in_thread(self) -> int:
        """Serve on a background thread; returns the bound port (``port=0`` picks a free one)."""

        def main() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self.run(self._ready))
            except asyncio.CancelledError:
                pass
            except BaseException as exc:  # surfaced by start_in_thread
                self._error = exc
                self._ready.set()
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=main, name="ocpp-central-system", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise RuntimeError(f"OCPP central system could not start on {self.host}:{self.port}: {self._error}")
        return self.port

    def stop(self) -> None:
        if self._loop is not None and self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        if self._thread is not None:
            self._thread.join(15)
