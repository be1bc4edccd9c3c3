"""One clock for every path: the planning instant of a site, on the 5-minute grid.

* **fixed**: a pinned instant (``powersync demo``, ``--now``, ``POWERSYNC_FIXED_NOW``): every run is the same run;
* **replay**: a ``replay`` site maps the wall clock into its replay file, cycling through the window so a UI left
  running keeps moving; a live provider read from saved payloads (``provider.file``) runs on the payload's clock;
* **wall**: the wall clock (UTC) for live providers.

The planning cycle, the services, the spike watch's replay prices, the automations and curtailment all take the
instant from here, so they agree on "now".
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from ..config import SiteConfig
from ..prices.replay import default_replay_now, replay_window
from ..prices.saved import default_saved_now
from ..timegrid import HORIZON_HOURS, on_grid

REPLAY_EPOCH = pd.Timestamp("2020-01-01", tz="UTC")


def wall_clock() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


def parse_instant(text: str | pd.Timestamp, what: str = "--now") -> pd.Timestamp:
    """An ISO instant as UTC (a naive one is taken as UTC); a clear error names the flag."""
    try:
        ts = pd.Timestamp(text)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} {text!r} is not an ISO timestamp") from exc
    if ts is pd.NaT:
        raise ValueError(f"{what} {text!r} is not an ISO timestamp")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


class Clock:
    """The planning clock (see the module docstring). ``fixed`` pins it; ``wall`` is injectable for tests."""

    def __init__(self, fixed: str | pd.Timestamp | None = None, wall: Callable[[], pd.Timestamp] = wall_clock) -> None:
        self.fixed = parse_instant(fixed) if fixed not in (None, "") else None
        self._wall = wall

    def wall(self) -> pd.Timestamp:
        """The real time (leases, latency, the age of telemetry run on it, whatever the planning instant)."""
        return self._wall()

    def site_now(self, site: SiteConfig, wall: pd.Timestamp | None = None) -> pd.Timestamp:
        """The planning instant for ``site`` at wall time ``wall`` (default: now)."""
        if self.fixed is not None:
            return on_grid(self.fixed)
        w = on_grid(wall if wall is not None else self.wall())
        if site.provider.kind != "replay":
            return default_saved_now(site) if site.provider.file else w
        first = default_replay_now(site)
        _, end = replay_window(site)
        usable = (end - pd.Timedelta(hours=HORIZON_HOURS)) - first
        if usable <= pd.Timedelta(0):
            return first
        return on_grid(first + (w - REPLAY_EPOCH) % usable)
