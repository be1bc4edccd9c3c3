"""One Modbus TCP connection per device, with reconnects that back off instead of storming.

Reads retry through reconnects (jittered exponential backoff, bounded attempts, paced per endpoint). A write
that gets a Modbus exception or loses the connection is retried once (writing the same value twice is
harmless), then the caller gets a clear error naming the device, register and exception code. No transport
error of any kind leaves this module as anything but ``DeviceUnavailable`` / ``DeviceRejected``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusException

from .base import DeviceRejected, DeviceUnavailable

log = logging.getLogger(__name__)

EXCEPTION_NAMES = {
    1: "illegal function", 2: "illegal data address", 3: "illegal data value", 4: "device failure",
    5: "acknowledge", 6: "device busy", 10: "gateway path unavailable", 11: "gateway target failed to respond",
}


def u32(regs: list[int], word_order: str) -> int:
    hi, lo = (regs[0], regs[1]) if word_order == "big" else (regs[1], regs[0])
    return (hi << 16) | lo


def s32(regs: list[int], word_order: str) -> int:
    v = u32(regs, word_order)
    return v - (1 << 32) if v & 0x80000000 else v


def to_u32(value: int, word_order: str) -> list[int]:
    v = int(value) & 0xFFFFFFFF
    hi, lo = v >> 16, v & 0xFFFF
    return [hi, lo] if word_order == "big" else [lo, hi]


def s16(v: int) -> int:
    return v - 0x10000 if v & 0x8000 else v


@dataclass
class _Endpoint:
    """Reconnect pacing for one (host, port): every link to it in this process shares it, so a device object
    per command (pipeline, watch, services) and several units behind one gateway never add up to a storm."""

    failures: int = 0
    next_connect: float = 0.0


_endpoints: dict[tuple[str, int, Callable[[], float]], _Endpoint] = {}
_endpoints_lock = threading.Lock()


def _endpoint(host: str, port: int, clock: Callable[[], float]) -> _Endpoint:
    with _endpoints_lock:
        return _endpoints.setdefault((host, port, clock), _Endpoint())


class ModbusLink:
    """A synchronous pymodbus client for one unit, safe to share between threads of one process.

    Whatever the transport does (refused, reset, broken pipe, timeout, a reply pymodbus cannot decode) the
    caller sees ``DeviceUnavailable``; a Modbus exception reply is ``DeviceRejected`` with its code. ``clock``
    and ``sleep`` are injectable so tests can count reconnects per simulated minute without waiting.
    """

    def __init__(self, host: str, port: int, device_id: int, *, timeout_s: float = 3.0, attempts: int = 3,
                 backoff_base_s: float = 0.2, backoff_max_s: float = 10.0, name: str = "modbus",
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.host, self.port, self.device_id, self.name = host, port, device_id, name
        self.timeout_s, self.attempts = timeout_s, max(1, attempts)
        self.backoff_base_s, self.backoff_max_s = backoff_base_s, backoff_max_s
        self.clock, self.sleep = clock, sleep
        self._client: ModbusTcpClient | None = None
        self._ep = _endpoint(host, port, clock)
        self._lock = threading.RLock()
        self.connects = 0  # connection attempts made by this link

    @property
    def where(self) -> str:
        return f"{self.name} {self.host}:{self.port} unit {self.device_id}"

    # -- connection -------------------------------------------------------------------------------------
    def _backoff_delay(self) -> float:
        """Jittered exponential: uniform(cap/2, cap), cap = min(max, base * 2^(failures-1)); clients that
        failed together do not retry in lock-step, and the floor cap/2 bounds reconnects per minute."""
        cap = min(self.backoff_max_s, self.backoff_base_s * (2 ** max(0, self._ep.failures - 1)))
        return random.uniform(cap / 2, cap)

    def _connected_client(self) -> ModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        wait = self._ep.next_connect - self.clock()
        if wait > 0:
            self.sleep(min(wait, self.backoff_max_s))
        if self._client is None:
            self._client = ModbusTcpClient(self.host, port=self.port, timeout=self.timeout_s, retries=0,
                                           reconnect_delay=0, name=self.name)
        self.connects += 1
        if not self._client.connect():
            self._failed()
            raise DeviceUnavailable(f"{self.where}: cannot connect")
        return self._client

    def _failed(self) -> None:
        self._ep.failures += 1
        self._ep.next_connect = self.clock() + self._backoff_delay()
        if self._client is not None:
            self._client.close()

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- requests ---------------------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[ModbusTcpClient], Any], attempts: int) -> Any:
        with self._lock:
            last: Exception | None = None
            errors: list[Exception] = []
            rejected = 0
            for attempt in range(attempts):
                try:
                    client = self._connected_client()
                except DeviceUnavailable as exc:
                    last = exc
                    errors.append(exc)
                    continue
                try:
                    reply = fn(client)
                except (ModbusException, OSError) as exc:  # no reply, dropped, reset, broken pipe, timed out
                    last = self._lost(what, attempt, attempts, exc)
                    errors.append(exc)
                    continue
                except Exception as exc:  # noqa: BLE001 - a reply pymodbus could not decode: the stream is suspect
                    log.warning("%s: %s: unexpected %s from the client", self.where, what, type(exc).__name__,
                                exc_info=True)
                    last = self._lost(what, attempt, attempts, exc)
                    errors.append(exc)
                    continue
                if reply is None or not hasattr(reply, "isError"):
                    last = self._lost(what, attempt, attempts, ValueError(f"no reply object ({reply!r})"))
                    errors.append(last)
                    continue
                self._ep.failures = 0
                if reply.isError():
                    code = getattr(reply, "exception_code", None)
                    last = DeviceRejected(
                        f"{self.where}: {what} answered Modbus exception {code} "
                        f"({EXCEPTION_NAMES.get(code or 0, 'unknown')})", code)
                    rejected += 1
                    if rejected < 2 and attempt + 1 < attempts:  # retry a Modbus exception once
                        self.sleep(min(0.2, self.backoff_base_s))
                        continue
                    raise last
                return reply
            if isinstance(last, DeviceRejected):
                raise last
            causes = list(dict.fromkeys(self._cause(e) for e in errors))
            raise DeviceUnavailable(f"{self.where}: {what}: no reply after {attempts} attempt(s): "
                                    f"{'; then '.join(causes)}") from last

    def _cause(self, exc: Exception) -> str:
        """One failure in a few words (the link's own prefix is not repeated)."""
        if isinstance(exc, DeviceUnavailable):
            return str(exc).removeprefix(f"{self.where}: ")
        return f"{type(exc).__name__}: {exc}"

    def _lost(self, what: str, attempt: int, attempts: int, exc: Exception) -> Exception:
        """The connection is out of step or gone: drop it (the next attempt reconnects after the backoff)."""
        self._failed()
        log.info("%s: %s failed (attempt %d/%d): %s: %s", self.where, what, attempt + 1, attempts,
                 type(exc).__name__, exc)
        return exc

    def _registers(self, what: str, reply: Any, count: int) -> list[int]:
        regs = list(getattr(reply, "registers", None) or [])
        if len(regs) < count:
            raise DeviceRejected(f"{self.where}: {what} returned {len(regs)} register(s), expected {count}")
        return regs[:count]

    def read_input(self, address: int, count: int = 1) -> list[int]:
        what = f"read input {address}+{count}"
        r = self._call(what, lambda c: c.read_input_registers(address, count=count, device_id=self.device_id),
                       self.attempts)
        return self._registers(what, r, count)

    def read_holding(self, address: int, count: int = 1) -> list[int]:
        what = f"read holding {address}+{count}"
        r = self._call(what, lambda c: c.read_holding_registers(address, count=count, device_id=self.device_id),
                       self.attempts)
        return self._registers(what, r, count)

    def write_register(self, address: int, value: int) -> None:
        """FC6, retried once."""
        self._call(f"write holding {address}={value}",
                   lambda c: c.write_register(address, int(value) & 0xFFFF, device_id=self.device_id), 2)

    def write_registers(self, address: int, values: list[int]) -> None:
        """FC16 (32-bit values), retried once."""
        self._call(f"write holding {address}={values}",
                   lambda c: c.write_registers(address, [int(v) & 0xFFFF for v in values], device_id=self.device_id),
                   2)
