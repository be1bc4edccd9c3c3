"""Curtail and restore a site's AC inverter with the same guarantees as battery commands.

The settings before the first write are saved durably (``devices.state``, slot ``ac_curtail``) so a crash or
a restart between curtail and restore still knows what to put back; a second curtail keeps the *original*
settings; one writer per device (``devices.locks``); every command is recorded in ``commands`` with what was
written and read back. A failed restore stays pending and is retried by the next call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ...config import SiteConfig
from ...redaction import redact
from ...storage import HistoryStore
from .. import state
from ..base import CommandRefused, DeviceError, VerifyError
from ..grants import grant_owner, missing_grant
from ..locks import DeviceBusy, device_writer
from .base import AcInverter
from .brands import open_inverter

SLOT = "ac_curtail"
log = logging.getLogger(__name__)


@dataclass
class InverterCommandResult:
    command: str
    brand: str
    ok: bool
    outcome: str  # ok | refused | verify_failed | error
    error: str | None = None
    written: list[dict[str, Any]] = field(default_factory=list)
    readback: dict[str, Any] = field(default_factory=dict)
    saved: dict[str, Any] | None = None
    command_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _inverter_for(site: SiteConfig, inverter: AcInverter | None) -> AcInverter:
    if inverter is not None:
        return inverter
    if site.ac_inverter is None:
        raise CommandRefused(f"site {site.id!r} has no ac_inverter section")
    return open_inverter(site.ac_inverter)


def _run(site: SiteConfig, store: HistoryStore | None, name: str, inverter: AcInverter | None, body: Any) -> InverterCommandResult:
    brand = site.ac_inverter.brand if site.ac_inverter is not None else (inverter.brand if inverter else "none")
    result = InverterCommandResult(command=name, brand=brand, ok=False, outcome="error")
    inv: AcInverter | None = None
    try:
        inv = _inverter_for(site, inverter)
        if why := missing_grant(site.id, inv.arbitrated):
            raise CommandRefused(why)
        with device_writer(inv.device_key):
            body(inv, result)
        result.ok, result.outcome = True, "ok"
    except CommandRefused as exc:
        result.outcome, result.error = "refused", str(exc)
    except VerifyError as exc:
        result.outcome, result.error = "verify_failed", str(exc)
    except (DeviceError, DeviceBusy) as exc:
        result.outcome, result.error = "error", str(exc)
    except Exception as exc:  # noqa: BLE001 - an inverter command is always recorded, never a traceback
        log.warning("%s on %s: unexpected %s", name, site.id, type(exc).__name__, exc_info=True)
        result.outcome, result.error = "error", f"unexpected {type(exc).__name__}: {exc}"
    finally:
        if inv is not None:
            result.written = list(inv.written)
            if inverter is None:
                inv.close()
    result.error = redact(result.error) if result.error is not None else None
    if store is not None:
        result.command_id = store.record_command(
            site.id, f"ac_inverter:{brand}", name, result.outcome, params={"brand": brand},
            written=result.written, readback=result.readback, error=result.error, owner=grant_owner(),
        )
    return result


def curtail_inverter(site: SiteConfig, store: HistoryStore | None, inverter: AcInverter | None = None) -> InverterCommandResult:
    """Zero export on the site's AC inverter; the previous settings are saved before the first write."""

    def body(inv: AcInverter, result: InverterCommandResult) -> None:
        before = inv.read_state()
        pending = state.load_pending(store, site.id, SLOT)
        if pending is None:
            # Already curtailed by someone else: restoring that would re-curtail, so save "no limit" instead.
            keep = inv.settings_of(before) if not before.get("curtailed") else inv.settings_of(inv.default_state())
            pending = state.save_if_absent(store, site.id, SLOT, f"ac_inverter:{inv.brand}", "curtail", keep, None)
        result.saved = pending.state
        _, after = inv.curtail(before)
        result.readback = after

    return _run(site, store, "curtail_inverter", inverter, body)


def restore_inverter(site: SiteConfig, store: HistoryStore | None, inverter: AcInverter | None = None) -> InverterCommandResult:
    """Put back the saved settings (or the brand's no-limit default when nothing was saved), verified."""

    def body(inv: AcInverter, result: InverterCommandResult) -> None:
        pending = state.load_pending(store, site.id, SLOT)
        result.saved = pending.state if pending is not None else None
        try:
            result.readback = inv.restore(pending.state if pending is not None else None)
        except Exception as exc:  # noqa: BLE001 - recorded on the saved state, then reported by _run
            if pending is not None:
                state.mark_restore_failed(store, pending, redact(exc))
            raise
        if pending is not None:
            state.mark_restored(store, pending)

    return _run(site, store, "restore_inverter", inverter, body)


def inverter_curtailed(site: SiteConfig, store: HistoryStore | None) -> bool:
    """Whether a curtailment is pending restore for this site (from the saved state, no device call)."""
    return state.load_pending(store, site.id, SLOT) is not None
