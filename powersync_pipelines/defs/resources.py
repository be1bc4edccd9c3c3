"""Resources: the sites file, the DuckDB history store, the battery fleet and the planning clock.

This module holds only resource classes and the one ``@dg.definitions`` function that binds them (a defs
module with a Definitions object hides its other top-level objects from the autoloader).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import pandas as pd
from pydantic import Field

from ..config import SiteConfig, SitesFile, load_sites
from ..paths import duckdb_path
from ..storage import HistoryStore


class SitesResource(dg.ConfigurableResource):
    """The validated sites file (``path`` empty = ``$POWERSYNC_SITES`` or the shipped demo)."""

    path: str | None = None

    def load(self) -> SitesFile:
        return load_sites(self.path)

    def site(self, site_id: str) -> SiteConfig:
        return self.load().get(site_id)


class HistoryStoreResource(dg.ConfigurableResource):
    """The one DuckDB file (default ``$POWERSYNC_HOME/powersync.duckdb``); never ``:memory:``."""

    path: str | None = None

    def store(self) -> HistoryStore:
        return HistoryStore(self.path or duckdb_path())


class BatteryFleetResource(dg.ConfigurableResource):
    """Opens the device driver for a site. ``endpoints`` overrides host:port per site (tests, demo)."""

    endpoints: dict[str, str] = Field(default_factory=dict)

    @contextmanager
    def open(self, site: SiteConfig, store: HistoryStore | None = None) -> Iterator:
        from ..devices.base import open_device

        if site.id in self.endpoints and site.battery.host is not None:
            host, _, port = self.endpoints[site.id].rpartition(":")
            site = site.model_copy(update={"battery": site.battery.model_copy(update={"host": host, "port": int(port)})})
        device = open_device(site, store)
        try:
            yield device
        finally:
            device.close()


class ClockResource(dg.ConfigurableResource):
    """The planning instant. ``fixed_now`` pins it (the demo); otherwise the run's creation time, so that
    every asset of one run plans for the same 5-minute slot."""

    fixed_now: str | None = None

    def now(self, context: dg.AssetExecutionContext | dg.OpExecutionContext, site: SiteConfig) -> pd.Timestamp:
        from ..pipeline import site_now

        if self.fixed_now:
            return site_now(site, fixed=self.fixed_now)
        record = context.instance.get_run_record_by_id(context.run.run_id)
        wall = pd.Timestamp(record.create_timestamp) if record is not None else pd.Timestamp.now(tz="UTC")
        return site_now(site, wall_now=wall)


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "sites": SitesResource(path=dg.EnvVar("POWERSYNC_SITES").get_value()),
            "history": HistoryStoreResource(path=dg.EnvVar("POWERSYNC_DUCKDB").get_value()),
            "fleet": BatteryFleetResource(endpoints=json.loads(os.environ.get("POWERSYNC_ENDPOINTS") or "{}")),
            "clock": ClockResource(fixed_now=dg.EnvVar("POWERSYNC_FIXED_NOW").get_value()),
        }
    )
