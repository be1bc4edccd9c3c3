"""AC-coupled inverter curtailment: one small interface for six brands.

Every driver knows three things about its brand: how to read the settings curtailment touches
(``read_state``), how to write "zero export" (``_write_zero_export``) and how to write a saved state back
(``_write_state``). This base adds what all share: the readback check after every write (a write that the
device accepted but did not apply is an error, not a success), the record of what was written, and a
``default_state`` ("no limit") used when nothing was saved.

Errors are the battery drivers' (``devices.base``): ``DeviceUnavailable``, ``DeviceRejected``,
``VerifyError``, ``Unsupported``, so one ``except DeviceError`` covers batteries and inverters alike.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from ...config import AcInverterConfig
from ..base import CommandRefused, VerifyError


class AcInverter(ABC):
    """One AC-coupled PV inverter that can be told to stop exporting and to go back to how it was."""

    brand: ClassVar[str]
    default_port: ClassVar[int]
    default_unit: ClassVar[int | None] = None

    def __init__(self, cfg: AcInverterConfig) -> None:
        if cfg.brand != self.brand:
            raise ValueError(f"{type(self).__name__} drives {self.brand!r}, config says {cfg.brand!r}")
        self.cfg = cfg
        self.host = cfg.host
        self.port = cfg.port or self.default_port
        self.unit = cfg.device_id if cfg.device_id is not None else self.default_unit
        self.written: list[dict[str, Any]] = []
        self.arbitrated = False  # live control: writes need the arbiter's grant (devices.grants)

    # -- brand primitives -----------------------------------------------------------------------------------
    @abstractmethod
    def read_state(self) -> dict[str, Any]:
        """The settings curtailment changes (JSON-able), plus ``curtailed`` (bool) as the device reports it."""

    @abstractmethod
    def _write_zero_export(self, state: dict[str, Any]) -> None:
        """Write zero export (``state`` is what was read just before)."""

    @abstractmethod
    def _write_state(self, state: dict[str, Any]) -> None:
        """Write back a state returned by ``read_state`` (or ``default_state``)."""

    @abstractmethod
    def default_state(self) -> dict[str, Any]:
        """The uncurtailed settings to restore when nothing was saved."""

    def settings_of(self, state: dict[str, Any]) -> dict[str, Any]:
        """The keys of a state that a restore must reproduce (readings such as power are excluded)."""
        return {k: v for k, v in state.items() if k not in ("curtailed", "readings")}

    def close(self) -> None:  # noqa: B027 - stateless brands need nothing
        """Release the connection."""

    # -- shared flow ----------------------------------------------------------------------------------------
    @property
    def device_key(self) -> str:
        return f"{self.brand}@{self.host}:{self.port}/{self.unit if self.unit is not None else '-'}"

    def _wrote(self, what: str, value: Any) -> None:
        self.written.append({"what": what, "value": value})

    def curtail(self, before: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Zero export. Returns (state before, read-back after); raises ``VerifyError`` if not applied.

        ``before`` is the state just read (the caller saves it durably before this first write)."""
        before = before if before is not None else self.read_state()
        self._write_zero_export(before)
        after = self.read_state()
        if not after.get("curtailed"):
            raise VerifyError(f"{self.device_key}: zero export written but read-back says not curtailed: "
                              f"{self.settings_of(after)}")
        return before, after

    def restore(self, saved: dict[str, Any] | None) -> dict[str, Any]:
        """Write back ``saved`` (or the brand's no-limit default); returns the verified read-back."""
        target = saved if saved is not None else self.default_state()
        self._write_state(target)
        after = self.read_state()
        want, got = self.settings_of(target), self.settings_of(after)
        diff = {k: (v, got.get(k)) for k, v in want.items() if got.get(k) != v}
        if diff:
            raise VerifyError(f"{self.device_key}: restore read-back differs (wanted, got): {diff}")
        return after

    def __enter__(self) -> AcInverter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def token_from_env(cfg: AcInverterConfig) -> str:
    """The bearer token named by ``token_env`` (never logged)."""
    if not cfg.token_env:
        raise CommandRefused(f"{cfg.brand} at {cfg.host}: ac_inverter.token_env is not set (needs a bearer token)")
    token = os.environ.get(cfg.token_env)
    if not token:
        raise CommandRefused(f"{cfg.brand} at {cfg.host}: environment variable {cfg.token_env} is empty or unset")
    return token
