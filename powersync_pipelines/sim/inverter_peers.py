"""Local peers for the AC-inverter drivers: a Modbus TCP register server and a small HTTP(S) server.

Why here and not in tests only: the demo and manual runs need something to curtail, too. Both bind loopback
only and port 0 by default. Brand behaviour (which registers exist, what a write does, what gets rejected)
lives in the brand peers built on these (``sim_*`` functions in each brand module's tests use them directly).

``RegisterPeer`` keeps plain dicts as the truth (``holding[unit]``, ``inputs[unit]``) and mirrors them into
pymodbus 3.16 ``SimDevice`` blocks on every access, so tests can read and set registers without pymodbus
internals. Addresses not in the tables answer Modbus exception 2 (illegal data address), like a real device.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.server
import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from .localhttp import serve_in_thread, stop_server

LOOPBACK = ("127.0.0.1", "localhost", "::1")
WriteHook = Callable[[int, int, list[int]], int | None]


@dataclass
class PeerWrite:
    unit: int
    address: int
    values: list[int]
    accepted: bool


def _runs(table: dict[int, int]) -> list[SimData]:
    """Contiguous address runs as REGISTERS blocks (gaps stay invalid: exception 2)."""
    if not table:
        return [SimData(65000, count=1, values=[0], datatype=DataType.REGISTERS)]
    blocks, addrs = [], sorted(table)
    start = prev = addrs[0]
    for a in addrs[1:] + [None]:
        if a is not None and a == prev + 1:
            prev = a
            continue
        blocks.append(SimData(start, count=prev - start + 1, values=[table[x] & 0xFFFF for x in range(start, prev + 1)],
                              datatype=DataType.REGISTERS))
        if a is not None:
            start = prev = a
    return blocks


class RegisterPeer:
    """A Modbus TCP device on loopback with separate holding/input tables per unit (or one shared space)."""

    name = "register-peer"

    def __init__(self, units: dict[int, tuple[dict[int, int], dict[int, int]]], *, shared: bool = False,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in LOOPBACK:
            raise ValueError(f"{self.name}: host {host!r} is not loopback")
        self.host, self._requested_port, self.shared = host, port, shared
        self.holding = {u: dict(t[0]) for u, t in units.items()}
        self.inputs = {u: (self.holding[u] if shared else dict(t[1])) for u, t in units.items()}
        self.writes: list[PeerWrite] = []
        self.lock = threading.RLock()
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # -- brand behaviour (override) -------------------------------------------------------------------------
    def on_write(self, unit: int, address: int, values: list[int]) -> int | None:
        """Validate a holding-register write; return a Modbus exception code to reject it."""
        return None

    def after_write(self, unit: int, address: int, values: list[int]) -> None:
        """Update derived registers (e.g. output power after a limit) once a write is accepted."""

    # -- helpers ------------------------------------------------------------------------------------------
    def set_holding(self, unit: int, address: int, *values: int) -> None:
        with self.lock:
            for i, v in enumerate(values):
                self.holding[unit][address + i] = v & 0xFFFF

    def set_input(self, unit: int, address: int, *values: int) -> None:
        with self.lock:
            for i, v in enumerate(values):
                self.inputs[unit][address + i] = v & 0xFFFF

    # -- pymodbus glue ------------------------------------------------------------------------------------
    async def _action(self, unit: int, fc: int, start: int, address: int, count: int, registers: list[int],
                      set_values: list[int] | None) -> ExcCodes | None:
        table = self.inputs[unit] if fc == 4 else self.holding[unit]
        with self.lock:
            if set_values:
                values = [int(v) for v in set_values]
                if any(address + i not in table for i in range(len(values))):
                    return ExcCodes.ILLEGAL_ADDRESS
                code = self.on_write(unit, address, values)
                self.writes.append(PeerWrite(unit, address, values, code is None))
                if code is not None:
                    return ExcCodes(code)
                for i, v in enumerate(values):
                    table[address + i] = v & 0xFFFF
                self.after_write(unit, address, values)
            for i in range(len(registers)):  # mirror the truth into pymodbus's block
                a = start + i
                if a in table:
                    registers[i] = table[a] & 0xFFFF
        return None

    def _devices(self) -> list[SimDevice]:
        devices = []
        for unit in self.holding:
            action = functools.partial(self._action, unit)

            async def bound(fc, start, address, count, registers, set_values, _a=action):  # noqa: ANN001
                return await _a(fc, start, address, count, registers, set_values)

            if self.shared:
                simdata: Any = _runs(self.holding[unit])
            else:
                bits = [SimData(0, values=False, datatype=DataType.BITS)]
                simdata = (bits, list(bits), _runs(self.holding[unit]), _runs(self.inputs[unit]))
            devices.append(SimDevice(unit, simdata, action=bound))
        return devices

    def start(self) -> RegisterPeer:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name=self.name, daemon=True)
        self._thread.start()
        if not ready.wait(10) or self._error is not None:
            raise RuntimeError(f"{self.name} did not start: {self._error}")
        return self

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main(ready))
        except BaseException as exc:  # reported by start()
            self._error = exc
            ready.set()
        finally:
            loop.close()

    async def _main(self, ready: threading.Event) -> None:
        self._stop = asyncio.Event()
        server = ModbusTcpServer(self._devices(), address=(self.host, self._requested_port))
        await server.serve_forever(background=True)
        self.port = server.transport.sockets[0].getsockname()[1]
        ready.set()
        await self._stop.wait()
        await server.shutdown()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(5)
        self._thread = None

    def __enter__(self) -> RegisterPeer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- HTTP -----------------------------------------------------------------------------------------------
@dataclass
class HttpExchange:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpReply:
    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    close_without_reply: bool = False

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, dict | list):
            return json.dumps(self.body).encode(), "application/json"
        if isinstance(self.body, str):
            return self.body.encode(), "text/html"
        return self.body, "application/octet-stream"


Handler = Callable[[HttpExchange], HttpReply]


class HttpPeer:
    """A threaded HTTP(S) server on loopback; ``handle`` maps each request to a reply, ``requests`` logs them."""

    def __init__(self, handle: Handler, *, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> None:
        if host not in LOOPBACK:
            raise ValueError(f"http peer: host {host!r} is not loopback")
        self.handle, self.tls, self.host = handle, tls, host
        self.requests: list[HttpExchange] = []
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def start(self) -> HttpPeer:
        peer = self

        class _H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                ex = HttpExchange(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                peer.requests.append(ex)
                reply = peer.handle(ex)
                if reply.close_without_reply:
                    self.close_connection = True
                    return
                data, ctype = reply.encoded()
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.headers.get("Content-Type", ctype))
                for k, v in reply.headers.items():
                    if k != "Content-Type":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _serve  # noqa: N815

            def log_message(self, *args: object) -> None:  # keep test output quiet
                return

        self._server = serve_in_thread(_H, self.host, 0, "http-peer", self.tls)
        return self

    def stop(self) -> None:
        stop_server(self._server)
        self._server = None

    def __enter__(self) -> HttpPeer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
