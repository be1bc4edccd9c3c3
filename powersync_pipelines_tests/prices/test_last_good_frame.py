"""``fetch_with_fallback``: a failing provider never leaves the site without prices, and never loses what is
stored; stale prices are reported so the caller can fall back to self-consumption. Real DuckDB files."""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
import respx

from powersync_pipelines.prices.amber import fetch_amber
from powersync_pipelines.prices.errors import PriceDataError
from powersync_pipelines.prices.fallback import fetch_with_fallback
from powersync_pipelines.schemas import finalize_price_frame

from .conftest import FIXTURES, make_site

NOW = pd.Timestamp("2025-01-15T03:02:00Z")


def synthetic(now: pd.Timestamp, hours: float = 26, shift: pd.Timedelta | None = None) -> pd.DataFrame:
    start = now.floor("5min") - pd.Timedelta(hours=2)
    idx = pd.date_range(start, periods=int(hours * 12), freq="5min", tz="UTC", name="interval_start")
    minutes = (idx - pd.Timestamp("2025-01-01", tz="UTC")).total_seconds() / 60
    imp = 0.25 + 0.1 * np.sin(np.asarray(minutes) / 97.0)
    df = pd.DataFrame({"import_price": imp, "export_price": imp - 0.2, "is_forecast": idx >= now.floor("5min")},
                      index=idx + (shift if shift is not None else pd.Timedelta(0)))
    return finalize_price_frame(df, source="synthetic", fetched_at=now)


class Flaky:
    """A provider that answers with ``frames`` in turn; an exception in the list is raised instead."""

    def __init__(self, *results):
        self.results = list(results)

    def __call__(self, site, now, horizon_hours=48, **_):
        r = self.results.pop(0)
        if isinstance(r, Exception):
            raise r
        return r(now) if callable(r) else r


def test_a_good_fetch_is_stored_and_reported_live(store):
    site = make_site("aemo", region="VIC1")
    frame, status = fetch_with_fallback(site, NOW, store, fetcher=Flaky(synthetic(NOW)))
    assert status.ok and not status.stale and status.rows_stored == len(frame)
    assert status.missing_fraction_24h == 0.0 and status.tariff_sync_allowed
    assert len(store.read_prices("home")) == len(frame)


def test_a_provider_error_serves_the_last_good_frame_with_its_age_and_reason(store):
    site = make_site("aemo", region="VIC1", stale_after_minutes=30)
    fetch_with_fallback(site, NOW, store, fetcher=Flaky(synthetic(NOW)))
    later = NOW + pd.Timedelta(minutes=10)
    err = PriceDataError("aemo", "truncated_zip", "PUBLIC_DISPATCHIS_202501151310_0000000460000000.zip: bad CRC")
    frame, status = fetch_with_fallback(site, later, store, fetcher=Flaky(err))
    assert status.source == "last_good" and not status.stale and status.problem == "truncated_zip"
    assert status.age_minutes == 10.0 and "truncated zip" in status.message
    assert not frame.empty and frame.index.max() > later
    assert len(store.read_prices("home")) == 26 * 12  # nothing already stored was lost


def test_beyond_the_staleness_limit_the_caller_is_told_to_fall_back(store):
    site = make_site("aemo", region="VIC1", stale_after_minutes=30)
    fetch_with_fallback(site, NOW, store, fetcher=Flaky(synthetic(NOW)))
    _, status = fetch_with_fallback(site, NOW + pd.Timedelta(minutes=45), store,
                                    fetcher=Flaky(httpx.ConnectTimeout("down")))
    assert status.stale and status.source == "last_good" and status.age_minutes == 45.0
    assert not status.tariff_sync_allowed and "self-consumption" in status.message
    assert status.problem == "ConnectTimeout"


def test_with_nothing_stored_the_status_is_stale_and_says_so(store):
    site = make_site("aemo", region="VIC1")
    frame, status = fetch_with_fallback(site, NOW, store, fetcher=Flaky(PriceDataError("aemo", "timeout")))
    assert frame.empty and status.source == "none" and status.stale and status.age_minutes is None


def test_an_hour_shifted_refetch_is_refused_and_the_stored_prices_stay(store):
    site = make_site("aemo", region="VIC1")
    good = synthetic(NOW)
    fetch_with_fallback(site, NOW, store, fetcher=Flaky(good))
    bad = synthetic(NOW, shift=pd.Timedelta(hours=1))  # a feed that slipped into daylight time
    frame, status = fetch_with_fallback(site, NOW + pd.Timedelta(minutes=5), store, fetcher=Flaky(bad))
    assert status.problem == "timezone_off_by_an_hour" and status.source == "last_good"
    stored = store.read_prices("home")
    np.testing.assert_allclose(stored["import_price"].to_numpy(), good["import_price"].to_numpy())


def test_a_gappy_fetch_is_filled_flagged_and_stops_tariff_sync_when_over_ten_percent(store):
    site = make_site("aemo", region="VIC1")
    full = synthetic(NOW)
    short_gap = full.drop(index=full.index[40:43])
    frame, status = fetch_with_fallback(site, NOW, store, fetcher=Flaky(short_gap))
    assert status.filled_intervals == 3 and frame["filled"].sum() == 3 and status.tariff_sync_allowed
    long_gap = full.drop(index=full.index[60:100])  # 40 intervals = 14% of the next 24 h
    _, status = fetch_with_fallback(make_site("aemo", name="other", region="VIC1"), NOW, store,
                                    fetcher=Flaky(long_gap))
    assert status.ok and status.missing_fraction_24h > 0.10 and not status.tariff_sync_allowed


@respx.mock
def test_amber_401_keeps_the_last_good_amber_frame(store, monkeypatch):
    monkeypatch.setenv("AMBER_TEST_TOKEN", "psk_secret")
    site = make_site("amber", region="SA1", token_env="AMBER_TEST_TOKEN", site_id="S1",
                     base_url="http://amber.test/v1")
    route = respx.get("http://amber.test/v1/sites/S1/prices/current")
    route.mock(return_value=httpx.Response(200, content=(FIXTURES / "amber_prices_current_5min.json").read_bytes()))
    first, ok = fetch_with_fallback(site, NOW, store, fetcher=fetch_amber)
    route.mock(return_value=httpx.Response(401, json={"message": "Unauthorized"}))
    frame, status = fetch_with_fallback(site, NOW + pd.Timedelta(minutes=5), store, fetcher=fetch_amber)
    assert ok.ok and status.problem == "token_invalid" and status.age_minutes == 5.0
    pd.testing.assert_series_equal(frame["import_price"], first.loc[frame.index, "import_price"], check_freq=False)
