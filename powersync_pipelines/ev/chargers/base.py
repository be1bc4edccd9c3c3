"""One small interface for every EV charger: read status, set the current limit (or power), start, stop.

A driver implements the brand's primitives; this base adds what all share: the limit is clamped to the
charger (never above ``max_amps``; below ``min_amps`` means pause, as IEC 61851 allows nothing in between),
whole amps, every write read back where the protocol allows, and every command recorded in the ``commands``
table (``device_kind`` ``ev_<kind>``) with what was written and read back and the owner it was made for. Errors
are the battery drivers' (``devices.base``): ``DeviceUnavailable``, ``DeviceRejected``, ``VerifyError``,
``Unsupported``. A charger opened for live control (``arbitrated``, ``ControlContext.charger``) refuses every write
made without the arbiter's grant (``devices.grants``), like the battery drivers.
"""

from __future__ import annotations

import logging
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ...devices.base import CommandRefused, CommandResult, DeviceError, Unsupported, VerifyError
from ...devices.grants import grant_owner, missing_grant
from ...redaction import redact, register

if TYPE_CHECKING:
    from ...config import EvConfig
    from ...storage import HistoryStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChargerStatus:
    """What the charger reports now. Powers kW, energy kWh, current A per phase; None = not reported."""

    car_connected: bool
    charging: bool
    power_kw: float | None
    current_limit_a: float | None  # the limit in force at the charger
    session_energy_kwh: float | None
    state: str  # the brand's own status word or code
    raw: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"car_connected": self.car_connected, "charging": self.charging, "power_kw": self.power_kw,
                "current_limit_a": self.current_limit_a, "session_energy_kwh": self.session_energy_kwh,
                "state": self.state}


class ChargerError(DeviceError):
    """A charger request failed (the message names the charger and the endpoint, never a secret)."""


def secret(env_name: str | None, what: str, *, sensitive: bool = True) -> str:
    """The value of the environment variable the sites file names; a clear error when it is missing.
    ``sensitive`` values (passwords, keys) are masked in every later error and log line; a user name is not."""
    value = os.environ.get(env_name or "")
    if not env_name or not value:
        raise CommandRefused(f"{what}: environment variable {env_name or '(none named)'} is not set")
    if sensitive:
        register(value)
    return value


class Charger(ABC):
    """One charger at a site."""

    kind: ClassVar[str]

    def __init__(self, cfg: EvConfig, site_id: str, store: HistoryStore | None = None) -> None:
        if cfg.charger != self.kind:
            raise ValueError(f"{type(self).__name__} drives {self.kind!r}, config says {cfg.charger!r}")
        self.cfg, self.site_id, self.store = cfg, site_id, store
        self.arbitrated = False  # live control: every write needs the arbiter's grant (devices.grants)
        self._written: dict[str, Any] = {}
        self._readback: dict[str, Any] = {}

    # -- brand primitives ---------------------------------------------------------------------------------
    @abstractmethod
    def read_status(self) -> ChargerStatus: ...

    @abstractmethod
    def _write_current(self, amps: int) -> None:
        """Write a limit of ``amps`` (already whole, within min..max; never 0: pausing is ``_pause``)."""

    @abstractmethod
    def _pause(self) -> None: ...

    @abstractmethod
    def _resume(self) -> None: ...

    def _read_limit(self) -> float | None:
        """The limit the charger reports after a write (None: the brand cannot say)."""
        return self.read_status().current_limit_a

    def close(self) -> None:  # noqa: B027 - HTTP drivers close their client; others need nothing
        """Release connections."""

    # -- helpers for drivers ----------------------------------------------------------------------------
    def _wrote(self, what: str, value: Any) -> None:
        self._written[what] = value

    def _read_back(self, what: str, value: Any) -> None:
        self._readback[what] = value

    # -- the interface --------------------------------------------------------------------------------------
    def clamp(self, amps: float) -> int:
        """Whole amps the charger may be told: at most ``max_amps``, 0 below ``min_amps``."""
        if not math.isfinite(amps) or amps < 0:
            raise CommandRefused(f"ev {self.kind}: current limit must be a finite number >= 0, got {amps!r}")
        a = math.floor(min(amps, self.cfg.max_amps) + 1e-9)
        return 0 if a < self.cfg.min_amps else int(a)

    def set_current_limit(self, amps: float) -> CommandResult:
        """Limit the charger to ``amps`` per phase (0 or below the minimum pauses); read back where possible."""
        def go() -> None:
            a = self.clamp(amps)
            self._wrote("amps", a)
            if a == 0:
                self._pause()
                return
            self._write_current(a)
            self._resume()
            got = self._read_limit()
            self._read_back("current_limit_a", got)
            if got is not None and abs(got - a) > 0.5:
                raise VerifyError(f"ev {self.kind}: wrote {a} A, the charger reports {got:g} A")

        return self._command("set_current_limit", {"amps": amps}, go)

    def set_power(self, kw: float) -> CommandResult:
        """``kw`` total AC power, as whole amps for the charger's phases and voltage."""
        if not math.isfinite(kw) or kw < 0:
            def refuse() -> None:
                raise CommandRefused(f"ev {self.kind}: power must be a finite number >= 0, got {kw!r}")

            return self._command("set_power", {"kw": kw}, refuse)
        return self.set_current_limit(kw * 1000.0 / (self.cfg.voltage * self.cfg.phases))

    def start(self) -> CommandResult:
        return self._command("start", {}, self._resume)

    def stop(self) -> CommandResult:
        return self._command("stop", {}, self._pause)

    def _command(self, name: str, params: dict[str, Any], fn: Callable[[], None]) -> CommandResult:
        self._written, self._readback = {}, {}
        outcome, error = "ok", None
        try:
            if why := missing_grant(self.site_id, self.arbitrated):
                raise CommandRefused(f"ev {self.kind}: {why}")
            fn()
        except Unsupported as exc:
            outcome, error = "refused", str(exc)
        except CommandRefused as exc:
            outcome, error = "refused", str(exc)
        except VerifyError as exc:
            outcome, error = "verify_failed", str(exc)
        except DeviceError as exc:
            outcome, error = "error", str(exc)
        error = redact(error) if error is not None else None
        res = CommandResult(name, params, dict(self._written), dict(self._readback), outcome == "ok", error, outcome)
        if self.store is not None:
            res.command_id = self.store.record_command(self.site_id, f"ev_{self.kind}", name, outcome, params=params,
                                                       written=res.written, readback=res.readback, error=error,
                                                       owner=grant_owner())
        if error:
            log.warning("ev %s %s: %s", self.kind, name, error)
        return res
