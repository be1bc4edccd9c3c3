"""Driving a simulated battery the way the product does: every write through the arbiter (as ``manual`` unless
told otherwise), every restore by the restore watch reading the control ledger."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd

from powersync_pipelines.config import SiteConfig
from powersync_pipelines.control.arbiter import Outcome, Request
from powersync_pipelines.control.clock import Clock
from powersync_pipelines.control.context import ControlContext
from powersync_pipelines.control.restore import settle
from powersync_pipelines.storage import HistoryStore

RELEASES = ("restore_normal",)


class Arbitrated:
    """A battery driver whose every command is a request to the arbiter; returns the driver's own result.

    A driver that lets an exception escape is caught by the arbiter; here it is raised again, so fault tests still
    see the escape."""

    def __init__(self, ctx: ControlContext, site: SiteConfig, device: Any, owner: str = "manual") -> None:
        self.ctx, self.site, self.device, self.owner = ctx, site, device, owner

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.device, name)
        if not callable(method) or name.startswith("_") or name in ("read_telemetry", "saved_state", "close"):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            minutes = args[0] if name.startswith("force_") and args else kwargs.get("duration_minutes", 30)
            lease = self.ctx.clock.wall() + pd.Timedelta(minutes=minutes if isinstance(minutes, int | float) else 30)
            out = self.ctx.arbiter.act(
                Request(self.site.id, "battery", self.owner, name, "test command", lease_until=lease,
                        releases=name in RELEASES, device_kind=self.site.battery.kind),
                lambda: method(*args, **kwargs))
            if out.result is None:
                raise RuntimeError(out.error)
            return out.result

        return call


@contextmanager
def arbitrated(store: HistoryStore | None, site: SiteConfig, owner: str = "manual") -> Iterator[Arbitrated]:
    assert store is not None, "the arbiter keeps its ledger in the store"
    ctx = ControlContext(store)
    with ctx.battery(site) as device:
        yield Arbitrated(ctx, site, device, owner)


def restore_due(store: HistoryStore, site: SiteConfig, at: pd.Timestamp | None = None) -> Outcome | None:
    """One pass of the restore watch at wall time ``at`` (default now): the battery's restore, or None."""
    when = at if at is not None else pd.Timestamp.now(tz="UTC")
    outs = [o for o in settle(ControlContext(store, Clock(wall=lambda: when)), site) if o.request.control == "battery"]
    return outs[-1] if outs else None
