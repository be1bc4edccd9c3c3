"""The arbiter's permission to write to a device, carried to the driver without threading it through every call.

A device opened for live control (``arbitrated=True``) refuses every write unless the arbiter granted it for
that site (``control.arbiter``): that makes the arbiter the one choke point for device writes. Drivers opened
directly (tests, the simulators' own checks) are not arbitrated. The grant also names the owner, which the
driver records with each command.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Grant:
    site_id: str
    control: str
    owner: str
    request_id: str


_current: ContextVar[Grant | None] = ContextVar("powersync_device_grant", default=None)


@contextmanager
def granted(grant: Grant) -> Iterator[Grant]:
    """Writes inside this block are made on behalf of ``grant.owner``."""
    token = _current.set(grant)
    try:
        yield grant
    finally:
        _current.reset(token)


def current_grant() -> Grant | None:
    return _current.get()


def missing_grant(site_id: str, arbitrated: bool) -> str | None:
    """Why a write may not go ahead (None: it may): an arbitrated device needs a grant for its own site."""
    if not arbitrated:
        return None
    g = _current.get()
    if g is None:
        return "no grant from the arbiter: every write to a live device goes through control.arbiter"
    if g.site_id != site_id:
        return f"the arbiter's grant is for site {g.site_id!r}, not {site_id!r}"
    return None


def grant_owner() -> str | None:
    g = _current.get()
    return g.owner if g is not None else None
