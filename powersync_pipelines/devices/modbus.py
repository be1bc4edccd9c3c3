"""One Modbus TCP connection per device, with reconnects that back off instead of storming.

Reads retry through reconnects (exponential backoff with full jitter, bounded attempts). A write that gets a
Modbus exception or loses the connection is retried once (writing the same value twice is harmless), then the
caller gets a clear error naming the device, register and exception code.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
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


class ModbusLink:
    """A synchronous pymodbus client for one unit, safe to share between threads of one process."""

    def __init__(self, host: str, port: int, device_id: int, *, timeout_s: float = 3.0, attempts: int = 3,
                 backoff_base_s: float = 0.2, backoff_max_s: float = 10.0, name: str = "modbus") -> None:
        self.host, self.port, self.device_id, self.name = host, port, device_id, name
        self.timeout_s, self.attempts = timeout_s, max(1, attempts)
        self.backoff_base_s, self.backoff_max_s = backoff_base_s, backoff_max_s
        self._client: ModbusTcpClient | None = None
        self._failures = 0
        self._next_connect = 0.0
        self._lock = threading.RLock()

    @property
    def where(self) -> str:
        return f"{self.name} {self.host}:{self.port} unit {self.device_id}"

    # -- connection -------------------------------------------------------------------------------------
    def _backoff_delay(self) -> float:
        """Full jitter: uniform(0, min(max, base * 2^failures)); many clients never retry in lock-step."""
        cap = min(self.backoff_max_s, self.backoff_base_s * (2 ** max(0, self._failures - 1)))
        return random.uniform(cap / 2, cap)

    def _connected_client(self) -> ModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        wait = self._next_connect - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        if self._client is None:
            self._client = ModbusTcpClient(self.host, port=self.port, timeout=self.timeout_s, retries=0,
                                           reconnect_delay=0, name=self.name)
        if not self._client.connect():
            self._failed()
            raise DeviceUnavailable(f"{self.where}: cannot connect")
        return self._client

    def _failed(self) -> None:
        self._failures += 1
        self._next_connect = time.monotonic() + self._backoff_delay()
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
            rejected = 0
            for attempt in range(attempts):
                try:
                    client = self._connected_client()
                    reply = fn(client)
                except DeviceUnavailable as exc:
                    last = exc
                    continue
                except ModbusException as exc:  # no reply / connection dropped: the stream may be out of step
                    last = exc
                    self._failed()
                    log.info("%s: %s failed (attempt %d/%d): %s", self.where, what, attempt + 1, attempts, exc)
                    continue
                self._failures = 0
                if reply.isError():
                    code = getattr(reply, "exception_code", None)
                    last = DeviceRejected(
                        f"{self.where}: {what} answered Modbus exception {code} "
                        f"({EXCEPTION_NAMES.get(code or 0, 'unknown')})", code)
                    rejected += 1
                    if rejected < 2 and attempt + 1 < attempts:  # retry a Modbus exception once
                        time.sleep(min(0.2, self.backoff_base_s))
                        continue
                    raise last
                return reply
            if isinstance(last, DeviceRejected):
                raise last
            raise DeviceUnavailable(f"{self.where}: {what}: no reply after {attempts} attempt(s): {last}") from last

    def read_input(self, address: int, count: int = 1) -> list[int]:
        r = self._call(f"read input {address}+{count}",
                       lambda c: c.read_input_registers(address, count=count, device_id=self.device_id),
                       self.attempts)
        return list(r.registers)

    def read_holding(self, address: int, count: int = 1) -> list[int]:
        r = self._call(f"read holding {address}+{count}",
                       lambda c: c.read_holding_registers(address, count=count, device_id=self.device_id),
                       self.attempts)
        return list(r.registers)

    def write_register(self, address: int, value: int) -> None:
        """FC6, retried once."""
        self._call(f"write holding {address}={value}",
                   lambda c: c.write_register(address, int(value) & 0xFFFF, device_id=self.device_id), 2)

    def write_registers(self, address: int, values: list[int]) -> None:
        """FC16 (32-bit values), retried once."""
        self._call(f"write holding {address}={values}",
                   lambda c: c.write_registers(address, [int(v) & 0xFFFF for v in values], device_id=self.device_id),
                   2)
