"""Resources: the sites file, the DuckDB history store, the battery fleet's endpoints and the planning clock.

This module holds only resource classes and the one ``@dg.definitions`` function that binds them (a defs
module with a Definitions object hides its other top-level objects from the autoloader). Environment
variables reach the resources unresolved (``dg.EnvVar``), so the UI shows which variable configured them.
"""

from __future__ import annotations

import json
import os

import dagster as dg
import pandas as pd
from pydantic import Field

from ..config import SiteConfig, SitesFile, load_sites
from ..control.clock import Clock
from ..control.context import ControlContext
from ..paths import sites_file
from ..storage import HistoryStore
from ..storage.backend import database_url

# One DuckDB file has one writer: every run that writes the history store carries this tag, and the
# ``powersync/duckdb_writer`` limit of 1 in dagster.yaml queues them behind each other. PostgreSQL takes
# concurrent writers, so there the runs carry no writer tag (planning shards are bounded by their own limit).
WRITER_TAGS: dict[str, str] = {} if database_url() else {"powersync/duckdb_writer": "true"}

_parsed: dict[tuple[str, int, int], SitesFile] = {}


def _sites(path: str | None) -> SitesFile:
    """The validated sites file, parsed once per process and file version (not once per site and asset)."""
    p = sites_file(path)
    try:
        st = p.stat()
    except OSError:
        return load_sites(path)  # the loader says what is missing
    key = (str(p), st.st_mtime_ns, st.st_size)
    if key not in _parsed:
        _parsed.clear()
        _parsed[key] = load_sites(p)
    return _parsed[key]


class SitesResource(dg.ConfigurableResource):
    """The validated sites file (``path`` empty = ``$POWERSYNC_SITES`` or the shipped demo)."""

    path: str | None = None

    def load(self) -> SitesFile:
        return _sites(self.path)

    def site(self, site_id: str) -> SiteConfig:
        return self.load().get(site_id)


class HistoryStoreResource(dg.ConfigurableResource):
    """The history: ``path`` is a DuckDB file or a ``postgresql://`` URL (default ``$POWERSYNC_DATABASE_URL``,
    else ``$POWERSYNC_HOME/powersync.duckdb``); never ``:memory:``."""

    path: str | None = None

    def store(self) -> HistoryStore:
        return HistoryStore(self.path or None)


class BatteryFleetResource(dg.ConfigurableResource):
    """Where each site's battery answers. ``endpoints`` overrides host:port per site (the demo's and the UI's
    simulators listen on whatever port was free)."""

    endpoints: dict[str, str] = Field(default_factory=dict)


class ClockResource(dg.ConfigurableResource):
    """The planning clock. ``fixed_now`` pins it (the demo); otherwise a run plans for its creation time, so that
    every asset of one run plans for the same 5-minute slot."""

    fixed_now: str | None = None

    def clock(self) -> Clock:
        return Clock(fixed=self.fixed_now)

    def now(self, context: dg.AssetExecutionContext | dg.OpExecutionContext, site: SiteConfig) -> pd.Timestamp:
        return self.clock().site_now(site, self.run_wall(context))

    def run_wall(self, context: dg.AssetExecutionContext | dg.OpExecutionContext) -> pd.Timestamp | None:
        """The run's creation time (None outside a stored run): read once per stage, not once per site."""
        record = context.instance.get_run_record_by_id(context.run.run_id)
        return pd.Timestamp(record.create_timestamp) if record is not None else None


def control_context(history: HistoryStoreResource, clock: ClockResource, fleet: BatteryFleetResource,
                    store: HistoryStore | None = None) -> ControlContext:
    """The control layer's context (store, clock, arbiter, devices) from the resources."""
    return ControlContext(store or history.store(), clock.clock(), dict(fleet.endpoints))


def _env(name: str) -> dg.EnvVar | None:
    """The variable, unresolved, when it is set (unset means the resource's own default)."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def _endpoints() -> dict[str, str]:
    raw = os.environ.get("POWERSYNC_ENDPOINTS") or "{}"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"POWERSYNC_ENDPOINTS is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError("POWERSYNC_ENDPOINTS must be a JSON object of site id -> host:port")
    return {str(k): str(v) for k, v in value.items()}


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "sites": SitesResource(path=_env("POWERSYNC_SITES")),
            # the PostgreSQL URL wins over a DuckDB path, as for every other HistoryStore()
            "history": HistoryStoreResource(path=_env("POWERSYNC_DATABASE_URL") or _env("POWERSYNC_DUCKDB")),
            "fleet": BatteryFleetResource(endpoints=_endpoints()),
            "clock": ClockResource(fixed_now=_env("POWERSYNC_FIXED_NOW")),
        }
    )

