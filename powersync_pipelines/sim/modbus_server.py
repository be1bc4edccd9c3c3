"""A pymodbus 3.16 TCP server on a background thread, with a physics hook and faults on demand.

Subclasses describe their register tables and react to reads (refresh values from the model) and writes
(validate, update the model). The server keeps its own register dictionaries as the truth and copies them into
pymodbus's blocks before each read, so tests can inspect and set registers without touching pymodbus internals.

Faults (``inject``): ``exception`` (reply with Modbus exception ``code``: 2 illegal address, 4 device
failure, 6 busy), ``timeout`` (no reply: hold the request, then drop the connection), ``slow`` (answer after
``delay_s``), ``drop`` (close the connection before handling the request), ``drop_after_write`` (apply the
write, then drop before replying), and ``reset`` / ``reset_after_write`` (the same with a TCP reset, which the
client sees as ``ConnectionResetError``, as when a battery dies mid-transaction). ``connects`` counts accepted
connections, so tests bound reconnects by counting, not by timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from ..devices.physics import BatteryModel

WRITE_FCS = {5, 6, 15, 16, 22, 23}
FAULT_KINDS = ("exception", "timeout", "slow", "drop", "drop_after_write", "reset", "reset_after_write")
HOLDING_FCS = {3, 6, 16, 22, 23}


@dataclass
class Fault:
    kind: str  # one of FAULT_KINDS
    code: int = 4
    address: int | None = None
    on: str = "any"  # read | write | any
    count: int = 1  # how many matching requests it affects (-1 = until cleared)
    delay_s: float = 2.0

    def matches(self, fc: int, address: int, n: int) -> bool:
        is_write = fc in WRITE_FCS
        if self.on == "read" and is_write or self.on == "write" and not is_write:
            return False
        return self.address is None or address <= self.address < address + max(n, 1)


@dataclass
class WriteRecord:
    fc: int
    address: int
    values: list[int]
    accepted: bool
    code: int | None = None
    at: float = field(default_factory=time.time)


class PortInUseError(RuntimeError):
    """The simulator's requested port is bound by another socket (another simulator, ``make ui``...)."""


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0 = any free port), bound here and held until the server owns it.

    Binding is the only test of whether a port is free that cannot race: two processes asked for the same port
    cannot both bind it, and the loser learns it from its own ``bind``.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers only, never a listener
        sock.bind((host, port))
        sock.listen(64)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(f"port {port} on {host} is already in use") from exc
        raise
    sock.setblocking(False)
    return sock


class ModbusSimulator:
    """Base for the Sungrow and Sigenergy simulators."""

    name = "modbus"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, model: BatteryModel,
                 time_scale: float = 1.0, tick_s: float = 0.25) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"{self.name} simulator: host {host!r} is not loopback; simulators bind loopback only")
        self.host, self._requested_port = host, port
        self.model = model
        self.time_scale = time_scale
        self.tick_s = tick_s
        self.holding: dict[int, dict[int, int]] = {}  # unit -> addr -> value
        self.inputs: dict[int, dict[int, int]] = {}
        self.writes: list[WriteRecord] = []
        self.reads: list[tuple[int, int, int]] = []
        self.faults: list[Fault] = []
        self.connects = 0  # TCP connections accepted
        self.lock = threading.RLock()
        self.port: int = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ModbusTcpServer | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._last_tick = time.monotonic()
        self._error: BaseException | None = None

    # -- to implement -------------------------------------------------------------------------------------
    def layout(self) -> dict[int, tuple[dict[int, int], dict[int, int]] | dict[int, int]]:
        """Per unit id: (holding, input) tables for separate spaces, or one dict for a shared space."""
        raise NotImplementedError

    def refresh(self) -> None:
        """Copy the model into the register dictionaries (called under ``lock``)."""

    def on_write(self, unit: int, address: int, values: list[int]) -> int | None:
        """Validate and apply a write; return a Modbus exception code to reject it."""
        return None

    def on_tick(self) -> None:
        """Time-based device behaviour (e.g. heartbeat fallbacks)."""

    # -- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> ModbusSimulator:
        """Bind the port (``PortInUseError`` when taken) and serve it from a background thread."""
        listener = bind_listener(self.host, self._requested_port)
        self.port = listener.getsockname()[1]
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready, listener), name=f"{self.name}-sim",
                                        daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"{self.name} simulator did not start within 10 s")
        if self._error is not None:
            raise RuntimeError(f"{self.name} simulator failed to start: {self._error}") from self._error
        return self

    def stop(self) -> None:
        """Stop serving; safe to call again (a test may stop a simulator its fixture also stops)."""
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)
        self._thread = None

    def __enter__(self) -> ModbusSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Run in the foreground until Ctrl-C (starts the server unless already running)."""
        if self._thread is None:
            self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                time.sleep(0.5)
        finally:
            self.stop()

    def _run(self, ready: threading.Event, listener: socket.socket) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._main(ready, listener))
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            ready.set()
        finally:
            listener.close()
            loop.close()

    def _devices(self) -> list[SimDevice]:
        devices = []
        for unit, tables in self.layout().items():
            if isinstance(tables, tuple):
                holding, inputs = tables
                self.holding[unit], self.inputs[unit] = holding, inputs
                bits = [SimData(0, values=False, datatype=DataType.BITS)]
                simdata: Any = (bits, list(bits), _blocks(holding), _blocks(inputs))
            else:
                self.holding[unit] = self.inputs[unit] = tables
                simdata = _blocks(tables)
            devices.append(SimDevice(unit, simdata, action=self._make_action(unit)))
        return devices

    async def _main(self, ready: threading.Event, listener: socket.socket) -> None:
        self._stop = asyncio.Event()
        devices = self._devices()
        with self.lock:
            self.refresh()
        self._server = server = ModbusTcpServer(devices, address=(self.host, self.port),
                                                trace_connect=self._on_connect)
        # serve the socket bound in start() instead of letting pymodbus bind the address again
        server.call_create = functools.partial(asyncio.get_running_loop().create_server,
                                               server.handle_new_connection, sock=listener, start_serving=True)
        await server.serve_forever(background=True)
        ready.set()
        while not self._stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.tick_s)
            self.advance_real()
        await self._server.shutdown()

    def _on_connect(self, connected: bool) -> None:
        if connected:
            with self.lock:
                self.connects += 1

    # -- physics ----------------------------------------------------------------------------------------
    def advance_real(self) -> None:
        now = time.monotonic()
        with self.lock:
            dt = (now - self._last_tick) * self.time_scale
            self._last_tick = now
            self.model.step(dt)
            self.on_tick()
            self.refresh()

    def advance(self, seconds: float = 0.0, minutes: float = 0.0) -> None:
        """Jump simulated time forward (deterministic tests)."""
        with self.lock:
            self.model.step(seconds + 60 * minutes)
            self.on_tick()
            self.refresh()

    # -- faults -----------------------------------------------------------------------------------------
    def inject(self, kind: str, *, code: int = 4, address: int | None = None, on: str = "any", count: int = 1,
               delay_s: float = 2.0) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r} (expected one of {', '.join(FAULT_KINDS)})")
        fault = Fault(kind, code, address, on, count, delay_s)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def _take_fault(self, fc: int, address: int, count: int) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if f.count != 0 and f.matches(fc, address, count):
                    if f.count > 0:
                        f.count -= 1
                    return f
        return None

    def _active(self, fault: Fault) -> bool:
        with self.lock:
            return any(f is fault for f in self.faults)

    def _drop_connections(self, reset: bool = False) -> None:
        """Close every client connection; ``reset`` sends a TCP RST (SO_LINGER 0) instead of a FIN."""
        if self._server is not None:
            for conn in list(self._server.active_connections.values()):
                with contextlib.suppress(Exception):
                    sock = conn.transport.get_extra_info("socket") if reset else None
                    if sock is not None:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    conn.transport.abort()

    # -- the pymodbus hook ------------------------------------------------------------------------------
    def _make_action(self, unit: int):  # noqa: ANN202 - pymodbus SimAction
        async def action(fc: int, start: int, address: int, count: int, registers: list[int],
                         values: list[int] | list[bool] | None) -> ExcCodes | None:
            is_write = values is not None and fc in WRITE_FCS
            if fc in WRITE_FCS and values is None:  # pymodbus re-reads after a write to build the echo
                return self._fill(unit, fc, start, address, count, registers)
            fault = self._take_fault(fc, address, count)
            if fault is not None and fault.kind == "exception":
                if is_write:
                    with self.lock:
                        self.writes.append(WriteRecord(fc, address, list(values), False, fault.code))
                return ExcCodes(fault.code)
            if fault is not None and fault.kind == "timeout":
                await asyncio.sleep(fault.delay_s)
                if not self._active(fault):  # cleared during the hold: the request dies alone, nobody else's
                    return ExcCodes.DEVICE_FAILURE  # connection is dropped (the client has given up on it)
            if fault is not None and fault.kind in ("drop", "timeout", "reset"):
                self._drop_connections(reset=fault.kind == "reset")
                return ExcCodes.DEVICE_FAILURE
            if fault is not None and fault.kind == "slow":
                await asyncio.sleep(fault.delay_s)
            if is_write:
                vals = [int(v) for v in values]
                with self.lock:
                    code = self.on_write(unit, address, vals)
                    self.writes.append(WriteRecord(fc, address, vals, code is None, code))
                    if code is None:
                        table = self.holding[unit]
                        for i, v in enumerate(vals):
                            table[address + i] = v
                        self.refresh()
                if code is not None:
                    return ExcCodes(code)
                if fault is not None and fault.kind in ("drop_after_write", "reset_after_write"):
                    self._drop_connections(reset=fault.kind == "reset_after_write")
                return None
            with self.lock:
                self.reads.append((fc, address, count))
            if fault is not None and fault.kind in ("drop_after_write", "reset_after_write"):
                self._drop_connections(reset=fault.kind == "reset_after_write")
            return self._fill(unit, fc, start, address, count, registers)

        return action

    def _fill(self, unit: int, fc: int, start: int, address: int, count: int, registers: list[int]) -> None:
        with self.lock:
            table = self.holding[unit] if fc in HOLDING_FCS else self.inputs[unit]
            for a in range(address, address + count):
                if a in table:
                    registers[a - start] = table[a] & 0xFFFF
        return None

    # -- inspection -------------------------------------------------------------------------------------
    def written_addresses(self, accepted_only: bool = True) -> list[int]:
        with self.lock:
            return [w.address for w in self.writes if w.accepted or not accepted_only]

    def clear_log(self) -> None:
        with self.lock:
            self.writes.clear()
            self.reads.clear()


def _blocks(table: dict[int, int]) -> list[SimData]:
    """Contiguous runs of defined addresses; gaps stay invalid (exception 2, like the real devices)."""
    out: list[SimData] = []
    addrs = sorted(table)
    run: list[int] = []
    for a in addrs:
        if run and a != run[-1] + 1:
            out.append(SimData(run[0], values=[table[x] & 0xFFFF for x in run], datatype=DataType.REGISTERS))
            run = []
        run.append(a)
    if run:
        out.append(SimData(run[0], values=[table[x] & 0xFFFF for x in run], datatype=DataType.REGISTERS))
    return out
