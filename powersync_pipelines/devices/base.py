"""The one battery device interface (SPEC §7) and the control semantics every driver shares.

A driver implements small primitives (read telemetry, snapshot/restore settings, force, idle, normal, reserve,
rates, export limit). This base class turns them into commands with the same safety rules for every system:
rated power never exceeded, no discharge below the reserve, no command on stale telemetry, the previous state
saved durably *before* the first write, a safe state after a failed write, one writer per device, and every
command (parameters, registers/requests written, read-back, outcome) recorded in the ``commands`` table.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..redaction import redact
from . import state
from .grants import grant_owner, missing_grant
from .locks import DeviceBusy, device_writer

if TYPE_CHECKING:
    from ..config import SiteConfig
    from ..storage import HistoryStore

log = logging.getLogger(__name__)

ACTIONS = ("CHARGE", "EXPORT", "IDLE", "SELF_CONSUMPTION")
MIN_FORCE_MINUTES, MAX_FORCE_MINUTES, DEFAULT_FORCE_MINUTES = 15, 240, 30
DEFAULT_APPLY_LEASE = pd.Timedelta(minutes=30)


# -- errors ---------------------------------------------------------------------------------------------
class DeviceError(RuntimeError):
    """The device could not be reached or rejected a request (message names device and register/endpoint)."""


class DeviceUnavailable(DeviceError):
    """No connection / no reply after the reconnect attempts."""


class DeviceRejected(DeviceError):
    """The device answered with an error (Modbus exception code, HTTP status)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class VerifyError(DeviceError):
    """A write was accepted but the read-back differs."""


class CommandRefused(DeviceError):
    """A safety rule refused the command before anything was written."""


class StaleTelemetry(CommandRefused):
    pass


class Unsupported(CommandRefused):
    """The battery kind has no such control."""


# -- values ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Telemetry:
    """One reading. Powers in kW, each with a named, non-negative direction; SOC/SOH fractions 0-1."""

    ts: pd.Timestamp
    soc: float
    soh: float | None
    battery_charge_kw: float
    battery_discharge_kw: float
    grid_import_kw: float
    grid_export_kw: float
    load_kw: float | None
    solar_kw: float | None
    mode: str
    raw: dict[str, Any] = field(default_factory=dict)

    def age_s(self, now: pd.Timestamp | None = None) -> float:
        return ((now or pd.Timestamp.now(tz="UTC")) - self.ts).total_seconds()

    def as_row(self) -> dict[str, Any]:
        """Columns of the ``telemetry`` table (``store.upsert_telemetry(site_id, t.ts, t.as_row())``)."""
        return {
            "soc": self.soc, "soh": self.soh, "battery_charge_kw": self.battery_charge_kw,
            "battery_discharge_kw": self.battery_discharge_kw, "grid_import_kw": self.grid_import_kw,
            "grid_export_kw": self.grid_export_kw, "load_kw": self.load_kw, "solar_kw": self.solar_kw,
            "mode": self.mode, "raw": self.raw,
        }


@dataclass
class CommandResult:
    command: str
    params: dict[str, Any]
    written: dict[str, Any]
    readback: dict[str, Any]
    ok: bool
    error: str | None = None
    outcome: str = "ok"  # ok | refused | verify_failed | error
    command_id: str | None = None

    def raise_for_error(self) -> CommandResult:
        if not self.ok:
            raise DeviceError(f"{self.command}: {self.error}")
        return self


def split_power(kw: float) -> tuple[float, float]:
    """A signed power (+ one way) as two named non-negative powers: (positive part, negative part)."""
    return (kw, 0.0) if kw >= 0 else (0.0, -kw)


def _record(log_: dict[str, Any], key: str, value: Any) -> None:
    """Add one write/read-back in order; a register touched again in the same command (a forced write, then
    the safe-state restore) gets ``key #2``, ``key #3``, ... so the record keeps every value, not the last."""
    if key not in log_:
        log_[key] = value
        return
    n = 2
    while f"{key} #{n}" in log_:
        n += 1
    log_[f"{key} #{n}"] = value


class _Tx:
    """What one command wrote and read back, in order."""

    def __init__(self) -> None:
        self.written: dict[str, Any] = {}
        self.readback: dict[str, Any] = {}


# -- the interface ----------------------------------------------------------------------------------------
class BatteryDevice(ABC):
    """One battery. One writer at a time; every write read back and verified."""

    kind: str = "battery"

    def __init__(self, site: SiteConfig, store: HistoryStore | None = None, arbitrated: bool = False) -> None:
        self.site = site
        self.cfg = site.battery
        self.store = store
        self.arbitrated = arbitrated  # live control: every write needs the arbiter's grant (devices.grants)
        self._last: Telemetry | None = None
        self._tx: _Tx | None = None
        self._until: pd.Timestamp | None = None  # end of the forced mode being applied (drivers may use it)

    # ---- primitives a driver implements ----
    @property
    @abstractmethod
    def device_key(self) -> str:
        """Identifies the physical device for the single-writer lock (e.g. ``sungrow_sh@host:port/unit``)."""

    @abstractmethod
    def _read_telemetry(self) -> Telemetry: ...

    @abstractmethod
    def _snapshot(self) -> dict[str, Any]:
        """The settings a forced mode changes (mode, reserve, export rule/limit, rates, ...)."""

    @abstractmethod
    def _restore_snapshot(self, snap: dict[str, Any]) -> None: ...

    @abstractmethod
    def _force(self, direction: str, power_kw: float) -> None:
        """Force ``charge`` or ``discharge`` at ``power_kw`` (already clamped to the rating)."""

    @abstractmethod
    def _idle(self, telemetry: Telemetry) -> None:
        """Hold the SOC: no battery flow."""

    @abstractmethod
    def _normal(self) -> None:
        """The system's own self-consumption mode (used when nothing was saved)."""

    def _set_reserve(self, pct: float) -> None:
        raise Unsupported(f"{self.kind} has no backup reserve control")

    def _set_charge_rate(self, kw: float) -> None:
        raise Unsupported(f"{self.kind} has no charge-rate control")

    def _set_discharge_rate(self, kw: float) -> None:
        raise Unsupported(f"{self.kind} has no discharge-rate control")

    def _set_export_limit(self, watts: float | None) -> None:
        raise Unsupported(f"{self.kind} has no export-limit control")

    def _curtail_snapshot(self) -> dict[str, Any]:
        raise Unsupported(f"{self.kind} has no export curtailment")

    def _restore_curtail(self, snap: dict[str, Any]) -> None:
        raise Unsupported(f"{self.kind} has no export curtailment")

    def _curtail(self) -> None:
        self._set_export_limit(0)

    def close(self) -> None:  # noqa: B027 - drivers without a connection need nothing
        """Release the connection."""

    # ---- helpers for drivers ----
    def _wrote(self, key: str, value: Any) -> None:
        if self._tx is not None:
            _record(self._tx.written, key, value)

    def _read_back(self, key: str, value: Any) -> None:
        if self._tx is not None:
            _record(self._tx.readback, key, value)

    # ---- public API ----
    def __enter__(self) -> BatteryDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read_telemetry(self) -> Telemetry:
        """One reading; whatever goes wrong underneath, the caller sees a ``DeviceError``."""
        try:
            t = self._read_telemetry()
        except DeviceError:
            raise
        except Exception as exc:  # noqa: BLE001 - a driver never leaks a foreign exception
            log.warning("%s telemetry on %s: unexpected %s", self.kind, self.site.id, type(exc).__name__,
                        exc_info=True)
            raise DeviceError(f"{self.kind} telemetry for site {self.site.id!r}: {_describe(exc)}") from exc
        self._last = t
        return t

    def apply(self, action: str, power_kw: float, until: pd.Timestamp | None = None) -> CommandResult:
        """Carry out one plan slot: CHARGE/EXPORT at ``power_kw``, IDLE (hold SOC) or SELF_CONSUMPTION.

        CHARGE/EXPORT/IDLE are a lease that ends at ``until`` (default now + 30 min): if no newer command comes,
        the restore watch puts the saved state back, so a dead pipeline never leaves the battery forced.
        """
        params = {"action": action, "power_kw": power_kw, "until": str(until) if until is not None else None}
        name = f"apply:{action}"
        if action not in ACTIONS:
            return self._refuse(name, params, f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
        problem = number_problem(power_kw, "power", "kW", negative_ok=True)
        if problem:
            return self._refuse(name, params, problem)
        wall = pd.Timestamp.now(tz="UTC")
        try:
            expires = pd.Timestamp(until) if until is not None else wall + DEFAULT_APPLY_LEASE
        except (TypeError, ValueError):
            expires = pd.NaT
        if expires is pd.NaT:
            return self._refuse(name, params, f"until {until!r} is not a date-time")
        if expires.tzinfo is None:
            expires = expires.tz_localize("UTC")
        if expires <= wall:  # a replayed clock (demo, backtest): the lease runs on the wall clock
            expires = wall + DEFAULT_APPLY_LEASE
        if action == "SELF_CONSUMPTION":
            return self._command(name, params, self._restore_body)
        if action in ("CHARGE", "EXPORT") and power_kw <= 0:
            action, name = "IDLE", f"apply:{action}->IDLE"
        if action == "IDLE":
            def idle_body() -> None:
                tel = self._fresh_telemetry()
                self._take_control("forced", name, expires)
                self._guarded(lambda: self._idle(tel))
            return self._command(name, params, idle_body)
        direction = "charge" if action == "CHARGE" else "discharge"
        return self._command(name, params, lambda: self._force_body(name, direction, power_kw, expires, params))

    def force_charge(self, duration_minutes: int | None = DEFAULT_FORCE_MINUTES,
                     power_kw: float | None = None) -> CommandResult:
        return self._forced("force_charge", "charge", duration_minutes, power_kw)

    def force_discharge(self, duration_minutes: int | None = DEFAULT_FORCE_MINUTES,
                        power_kw: float | None = None) -> CommandResult:
        return self._forced("force_discharge", "discharge", duration_minutes, power_kw)

    def restore_normal(self) -> CommandResult:
        """Put back the state saved before the forced mode (or the system's normal mode if none was saved)."""
        return self._command("restore_normal", {}, self._restore_body)

    def set_backup_reserve(self, pct: float) -> CommandResult:
        params = {"percent": pct}
        problem = number_problem(pct, "backup reserve", "%")
        if problem:
            return self._refuse("set_backup_reserve", params, problem)
        if not 0 <= pct <= 100:
            return self._refuse("set_backup_reserve", params, f"backup reserve {pct}% is outside 0-100 %")

        def body() -> None:
            self._set_reserve(float(pct))
            self._patch_saved("forced", {"reserve_pct": float(pct)})
        return self._command("set_backup_reserve", params, body)

    def set_charge_rate(self, kw: float) -> CommandResult:
        return self._rate("set_charge_rate", kw, self.cfg.max_charge_kw, self._set_charge_rate, "charge_rate_kw")

    def set_discharge_rate(self, kw: float) -> CommandResult:
        return self._rate("set_discharge_rate", kw, self.cfg.max_discharge_kw, self._set_discharge_rate,
                          "discharge_rate_kw")

    def set_export_limit(self, watts: float | None) -> CommandResult:
        params = {"watts": watts}
        problem = None if watts is None else number_problem(watts, "export limit", "W")
        if problem:
            return self._refuse("set_export_limit", params, problem)

        def body() -> None:
            self._set_export_limit(watts)
            self._patch_saved("forced", {"export_limit_w": watts})
        return self._command("set_export_limit", params, body)

    def curtail(self) -> CommandResult:
        """Zero export (solar still serves the house and battery); the previous export setting is saved."""
        def body() -> None:
            snap = self._curtail_snapshot()
            state.save_if_absent(self.store, self.site.id, "curtail", self.kind, "curtail", snap, None)
            self._curtail()
        return self._command("curtail", {}, body)

    def restore_curtailment(self) -> CommandResult:
        def body() -> None:
            saved = state.load_pending(self.store, self.site.id, "curtail")
            if saved is None:
                self._curtail_snapshot()  # reachable and supported?
                self._set_export_limit(None)
                return
            self._restore_saved(saved, lambda: self._restore_curtail(saved.state))
        return self._command("restore_curtailment", {}, body)

    def battery_health(self) -> dict[str, Any]:
        """State of health as the system reports it (``soh`` 0-1 or None)."""
        t = self.read_telemetry()
        return {"soh": t.soh, "soc": t.soc, "ts": str(t.ts)}

    def saved_state(self, slot: str = "forced") -> state.SavedState | None:
        """The pending saved state (a forced mode or curtailment is active), if any."""
        return state.load_pending(self.store, self.site.id, slot)

    # ---- shared command flow ----
    def _forced(self, name: str, direction: str, duration_minutes: int | None,
                power_kw: float | None) -> CommandResult:
        """Validate, then force. None means "not given": the rated power, the default lease. An explicit 0 is
        never read as "not given": 0 kW is refused (it would force nothing), and so is a 0-minute lease."""
        params: dict[str, Any] = {"duration_minutes": duration_minutes, "power_kw": power_kw}
        rated = self.cfg.max_charge_kw if direction == "charge" else self.cfg.max_discharge_kw
        if duration_minutes is None:
            duration_minutes = DEFAULT_FORCE_MINUTES
        problem = duration_problem(duration_minutes)
        if problem is None and power_kw is not None:
            problem = number_problem(power_kw, "power", "kW")
            if problem is None and power_kw == 0:
                problem = (f"power 0 kW: a forced {direction} at zero power does nothing; give a power above "
                           f"0 kW (up to the rated {rated:g} kW), or use IDLE / restore_normal")
        if problem:
            return self._refuse(name, params, problem)
        kw = rated if power_kw is None else float(power_kw)
        params["applied_minutes"] = int(duration_minutes)
        expires = pd.Timestamp.now(tz="UTC") + pd.Timedelta(minutes=int(duration_minutes))
        params["expires_at"] = str(expires)
        return self._command(name, params, lambda: self._force_body(name, direction, kw, expires, params))

    def _force_body(self, name: str, direction: str, kw: float, expires: pd.Timestamp,
                    params: dict[str, Any]) -> None:
        rated = self.cfg.max_charge_kw if direction == "charge" else self.cfg.max_discharge_kw
        if kw > rated:
            params["clamped_to_rated_kw"] = rated
            kw = rated
        params["applied_kw"] = kw
        tel = self._fresh_telemetry()
        if direction == "discharge":
            floor = self._reserve_floor(tel)
            if tel.soc <= floor + 0.005:
                raise CommandRefused(f"SOC {tel.soc:.1%} is at or below the reserve {floor:.0%}: not discharging")
        self._take_control("forced", name, expires)
        self._until = expires
        self._guarded(lambda: self._force(direction, kw))

    def _restore_body(self) -> None:
        saved = state.load_pending(self.store, self.site.id, "forced")
        if saved is None:
            self._normal()
            return
        self._restore_saved(saved, lambda: self._restore_snapshot(saved.state))

    def _restore_saved(self, saved: state.SavedState, write: Callable[[], None]) -> None:
        """Write a saved state back; a failure of any kind is recorded on it (``restore_failed``, attempts
        counted, error kept) so the restore watch retries it, and reaches the caller as a ``DeviceError``."""
        try:
            write()
        except Exception as exc:  # noqa: BLE001 - recorded, then re-raised typed
            error = exc if isinstance(exc, DeviceError) else DeviceError(_describe(exc))
            state.mark_restore_failed(self.store, saved, redact(error))
            if error is exc:
                raise
            raise error from exc
        state.mark_restored(self.store, saved)

    def _rate(self, name: str, kw: float, rated: float, fn: Callable[[float], None], key: str) -> CommandResult:
        params: dict[str, Any] = {"kw": kw}
        problem = number_problem(kw, "rate", "kW")
        if problem:
            return self._refuse(name, params, problem)
        if kw > rated:
            params["clamped_to_rated_kw"] = rated

        def body() -> None:
            fn(min(kw, rated))
            self._patch_saved("forced", {key: min(kw, rated)})
        return self._command(name, params, body)

    def _take_control(self, slot: str, reason: str, expires: pd.Timestamp | None) -> None:
        """Snapshot the settings and save them durably *before* the first write."""
        pending = state.load_pending(self.store, self.site.id, slot)
        snap = pending.state if pending is not None else self._snapshot()
        state.save_if_absent(self.store, self.site.id, slot, self.kind, reason, snap, expires)

    def _patch_saved(self, slot: str, changes: dict[str, Any]) -> None:
        """An explicit setting made during a forced mode must survive its restore."""
        saved = state.load_pending(self.store, self.site.id, slot)
        if saved is not None:
            from dataclasses import replace

            state.write(self.store, replace(saved, state={**saved.state, **changes}))

    def _guarded(self, fn: Callable[[], None]) -> None:
        """Run a multi-write control; on any failure put the battery back into its saved (safe) state."""
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - whatever broke the writes, the safe state is attempted
            if not isinstance(exc, DeviceError):
                log.warning("%s on %s: unexpected %s during a write", self.kind, self.site.id, type(exc).__name__,
                            exc_info=True)
            try:
                self._restore_body()
            except Exception as exc2:  # noqa: BLE001 - reported with the first error
                raise _noted(exc, f"safe-state restore also failed: {_describe(exc2)}") from exc
            raise _noted(exc, "battery returned to its saved state") from exc

    def _fresh_telemetry(self) -> Telemetry:
        limit = self.cfg.telemetry_max_age_s
        try:
            tel = self.read_telemetry()
        except DeviceError as exc:
            last = self._last
            if last is None or last.age_s() > limit:
                raise StaleTelemetry(f"no telemetry newer than {limit:.0f} s ({exc}); refusing to command") from exc
            return last
        if tel.age_s() > limit:
            raise StaleTelemetry(f"telemetry is {tel.age_s():.0f} s old (limit {limit:.0f} s); refusing to command")
        return tel

    def _reserve_floor(self, tel: Telemetry) -> float:
        device_reserve = tel.raw.get("reserve_pct")
        pct = max(self.cfg.backup_reserve_pct, float(device_reserve) if device_reserve is not None else 0.0)
        return pct / 100.0

    def _refuse(self, name: str, params: dict[str, Any], reason: str) -> CommandResult:
        def body() -> None:
            raise CommandRefused(reason)
        return self._command(name, params, body, lock=False)

    def _command(self, name: str, params: dict[str, Any], body: Callable[[], Any], lock: bool = True) -> CommandResult:
        tx = _Tx()
        self._tx = tx
        outcome, error = "ok", None
        try:
            if lock and (why := missing_grant(self.site.id, self.arbitrated)):
                raise CommandRefused(why)
            if lock:
                with device_writer(self.device_key):
                    body()
            else:
                body()
        except CommandRefused as exc:
            outcome, error = "refused", str(exc)
        except VerifyError as exc:
            outcome, error = "verify_failed", str(exc)
        except (DeviceError, DeviceBusy) as exc:
            outcome, error = "error", str(exc)
        except Exception as exc:  # noqa: BLE001 - a command is always recorded and reported, never a traceback
            log.warning("%s %s on %s: unexpected %s", self.kind, name, self.site.id, type(exc).__name__,
                        exc_info=True)
            outcome, error = "error", _describe(exc)
        finally:
            self._tx = None
        error = redact(error) if error is not None else None
        result = CommandResult(command=name, params=params, written=tx.written, readback=tx.readback,
                               ok=outcome == "ok", error=error, outcome=outcome)
        if self.store is not None:
            result.command_id = self.store.record_command(
                self.site.id, self.kind, name, outcome, params=params, written=tx.written, readback=tx.readback,
                error=error, owner=grant_owner(),
            )
        level = logging.INFO if result.ok else logging.WARNING
        log.log(level, "%s %s on %s: %s%s", self.kind, name, self.site.id, outcome, f" ({error})" if error else "")
        return result


# -- validation and messages ---------------------------------------------------------------------------------
def number_problem(value: Any, what: str, unit: str, negative_ok: bool = False) -> str | None:
    """Why ``value`` is not a usable quantity (None when it is): booleans, text, NaN and infinity are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{what} {value!r} is not a number"
    if not math.isfinite(value):
        return f"{what} {value} {unit} is not a finite number"
    if value < 0 and not negative_ok:
        return f"{what} {value} {unit} is negative"
    return None


def duration_problem(minutes: Any) -> str | None:
    """Why a forced-mode duration is unusable: not a whole number of minutes, or outside the allowed range."""
    problem = number_problem(minutes, "duration", "min")
    if problem:
        return problem
    if minutes != int(minutes):
        return f"duration {minutes} min is not a whole number of minutes"
    if not MIN_FORCE_MINUTES <= minutes <= MAX_FORCE_MINUTES:
        return f"duration {minutes:g} min is outside {MIN_FORCE_MINUTES}-{MAX_FORCE_MINUTES} min"
    return None


def _describe(exc: BaseException) -> str:
    """A one-line account of an exception: device errors speak for themselves, others name their type."""
    return str(exc) if isinstance(exc, DeviceError) else f"unexpected {type(exc).__name__}: {exc}"


def _noted(exc: BaseException, note: str) -> DeviceError:
    """``exc`` as a device error of the same kind (code kept) with ``note`` appended."""
    if not isinstance(exc, DeviceError):
        return DeviceError(f"{_describe(exc)}; {note}")
    try:
        noted = type(exc)(f"{exc}; {note}")
    except TypeError:  # a subclass with its own constructor
        noted = DeviceError(f"{exc}; {note}")
    if isinstance(exc, DeviceRejected):
        noted.code = exc.code  # type: ignore[attr-defined]
    return noted
