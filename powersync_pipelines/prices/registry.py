"""Provider dispatch: ``fetch_price_frame(site, now)`` returns the normalised frame for any provider kind.

Adding a provider is adding a module and one entry in ``PROVIDERS``. Every live provider is served from a
saved payload instead of the network when the site sets ``provider.file`` (demo, tests, offline installs).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ..config import SiteConfig
from ..paths import resolve_data_path
from .aemo import fetch_aemo
from .amber import fetch_amber
from .errors import PriceDataError
from .flow_power import fetch_flow_power
from .globird import fetch_globird
from .history import read_normalized_csv
from .octopus import fetch_octopus
from .replay import fetch_replay
from .saved import fetch_saved

PriceFetcher = Callable[..., pd.DataFrame]


def _fetch_normalized(site: SiteConfig, now: pd.Timestamp, horizon_hours: float = 48, **_: object) -> pd.DataFrame:
    base = Path(site.base_dir) if site.base_dir else None
    df = read_normalized_csv(resolve_data_path(site.provider.file or "", base), source="normalized")
    out = df.loc[now - pd.Timedelta(hours=24): now + pd.Timedelta(hours=horizon_hours) - pd.Timedelta(minutes=1)].copy()
    out["is_forecast"] = out.index >= now
    return out


# Prices are in the provider's currency, GST/VAT inclusive; a site billed in another currency is a config error.
PROVIDER_CURRENCY = {"amber": "AUD", "aemo": "AUD", "flow_power": "AUD", "globird": "AUD", "octopus": "GBP"}


def check_currency(site: SiteConfig) -> str:
    """The currency the frame is in (explicit, SPEC §3); refuses an Octopus site billed in AUD and vice versa."""
    expected = PROVIDER_CURRENCY.get(site.provider.kind)
    if expected and site.currency != expected:
        raise PriceDataError(site.provider.kind, "currency_mismatch",
                             f"site {site.id!r} is billed in {site.currency} but {site.provider.kind} prices are {expected}")
    return expected or str(site.currency)


def live_or_saved(live: PriceFetcher) -> PriceFetcher:
    """``live`` over the network, or the site's saved payload when ``provider.file`` is set."""

    def fetch(site: SiteConfig, now: pd.Timestamp, horizon_hours: float = 48, **kwargs: object) -> pd.DataFrame:
        currency = check_currency(site)
        if site.provider.file:
            history = kwargs.get("history_hours", 24.0)
            frame = fetch_saved(site, now, horizon_hours, history_hours=float(history))  # type: ignore[arg-type]
        else:
            frame = live(site, now, horizon_hours=horizon_hours, **kwargs)
        frame.attrs.update(currency=currency, tax="GST inclusive" if currency == "AUD" else "VAT inclusive")
        return frame

    fetch.__name__ = f"{live.__name__}_or_saved"
    fetch.__doc__ = live.__doc__
    return fetch


PROVIDERS: dict[str, PriceFetcher] = {
    "replay": fetch_replay,
    "normalized": _fetch_normalized,
    "amber": live_or_saved(fetch_amber),
    "aemo": live_or_saved(fetch_aemo),
    "flow_power": live_or_saved(fetch_flow_power),
    "globird": live_or_saved(fetch_globird),
    "octopus": live_or_saved(fetch_octopus),
}


class UnknownProviderError(ValueError):
    pass


def fetch_price_frame(site: SiteConfig, now: pd.Timestamp, horizon_hours: float = 48, **kwargs: object) -> pd.DataFrame:
    """Fetch and normalise prices for ``site`` around ``now`` (UTC)."""
    kind = site.provider.kind
    try:
        fetcher = PROVIDERS[kind]
    except KeyError:
        raise UnknownProviderError(f"site {site.id!r}: price provider {kind!r} is not implemented yet") from None
    return fetcher(site, now, horizon_hours=horizon_hours, **kwargs)
