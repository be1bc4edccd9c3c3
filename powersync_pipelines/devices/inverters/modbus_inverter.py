"""Shared plumbing for the Modbus TCP brands (Sungrow SG, Fronius, GoodWe, Huawei).

Connection handling (backoff, one retry on a Modbus exception, errors naming device and register) is the
battery drivers' ``devices.modbus.ModbusLink``; this adds lazy connect and a record of every write.
"""

from __future__ import annotations

from ...config import AcInverterConfig
from ..modbus import ModbusLink, to_u32
from .base import AcInverter


class ModbusInverter(AcInverter):
    default_port = 502
    default_unit = 1

    def __init__(self, cfg: AcInverterConfig, *, timeout_s: float = 3.0, attempts: int = 3) -> None:
        super().__init__(cfg)
        self._timeout_s, self._attempts = timeout_s, attempts
        self._link: ModbusLink | None = None

    @property
    def link(self) -> ModbusLink:
        if self._link is None:
            self._link = ModbusLink(self.host, self.port, int(self.unit or 0), timeout_s=self._timeout_s,
                                    attempts=self._attempts, name=self.brand)
        return self._link

    def write(self, address: int, value: int, what: str) -> None:
        self.link.write_register(address, value)
        self._wrote(f"{what} (holding {address})", value)

    def write_u32(self, address: int, value: int, what: str, word_order: str = "big") -> None:
        self.link.write_registers(address, to_u32(value, word_order))
        self._wrote(f"{what} (holding {address}-{address + 1})", value)

    def close(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None
