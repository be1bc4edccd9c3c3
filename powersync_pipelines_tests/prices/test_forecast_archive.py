"""Provider forecasts are archived as published (issue time, target interval, value, source) by the fetch
path, so what a provider said before the next fetch overwrote it stays for later provider backtests."""

from __future__ import annotations

import httpx
import pandas as pd
import pytest
import respx

from powersync_pipelines.prices.amber import fetch_amber
from powersync_pipelines.prices.archive import published_frames, published_rows, read_archive
from powersync_pipelines.prices.fallback import fetch_with_fallback
from powersync_pipelines.schemas import finalize_price_frame

from .conftest import FIXTURES, make_site
from .test_last_good_frame import NOW, Flaky, synthetic


def test_each_fetch_archives_its_own_issue_and_the_prices_table_keeps_only_the_latest(store):
    site = make_site("aemo", region="VIC1")
    first = synthetic(NOW)
    later_now = NOW + pd.Timedelta(minutes=5)
    second = synthetic(later_now)
    second["import_price"] += 0.05  # the provider revised its forecast
    second = finalize_price_frame(second.drop(columns=["fetched_at"]), source="synthetic", fetched_at=later_now)
    fetch_with_fallback(site, NOW, store, fetcher=Flaky(first))
    fetch_with_fallback(site, later_now, store, fetcher=Flaky(second))
    archive = read_archive(store, "home")
    assert sorted(archive["issued_at"].unique()) == [NOW, later_now]
    target = NOW.floor("5min") + pd.Timedelta(hours=3)
    both = archive[archive["interval_start"] == target].set_index("issued_at")["import_price"]
    assert both[later_now] - both[NOW] == pytest.approx(0.05)
    assert archive.loc[archive["issued_at"] == NOW, "lead_minutes"].min() >= -2  # nothing from before the issue
    stored = store.read_prices("home")
    assert stored.loc[target, "import_price"] == pytest.approx(both[later_now])  # the table holds the latest
    # re-archiving the same issue adds nothing
    n = len(archive)
    fetch_with_fallback(site, later_now, store, fetcher=Flaky(second))
    assert len(read_archive(store, "home")) == n


@respx.mock
def test_amber_advanced_price_forecasts_are_archived_with_their_band(store, monkeypatch):
    monkeypatch.setenv("AMBER_TEST_TOKEN", "psk_secret")
    site = make_site("amber", region="SA1", token_env="AMBER_TEST_TOKEN", site_id="S1",
                     base_url="http://amber.test/v1")
    respx.get("http://amber.test/v1/sites/S1/prices/current").mock(
        return_value=httpx.Response(200, content=(FIXTURES / "amber_prices_current_5min.json").read_bytes()))
    frame, status = fetch_with_fallback(site, NOW, store, fetcher=fetch_amber)
    assert status.ok
    archive = read_archive(store, "home", source="amber")
    forecasts = frame[frame["is_forecast"]]
    assert len(forecasts) > 0
    assert set(forecasts.index) <= set(archive["interval_start"])
    row = archive.set_index("interval_start").loc[forecasts.index[0]]
    assert row["import_price"] == pytest.approx(forecasts["import_price"].iloc[0])
    assert row["price_high"] == pytest.approx(forecasts["price_high"].iloc[0])
    assert (archive["issued_at"] == NOW).all()


def test_aemo_stages_and_day_ahead_tariffs_are_archived_saved_files_are_not():
    idx = pd.date_range("2025-12-27T00:00Z", periods=24, freq="5min", name="interval_start")
    frame = pd.DataFrame({"import_price": 0.3, "export_price": 0.1, "rrp": 120.0, "provenance": "p5min",
                          "is_forecast": True}, index=idx)
    p5 = finalize_price_frame(frame, source="nemweb", fetched_at=idx[0])
    rows = published_rows("home", p5)
    assert len(rows) == 24 and set(rows["stage"]) == {"p5min"} and rows["rrp"].eq(120.0).all()
    # an Octopus day-ahead price is the tariff, not flagged as a forecast: still archived once it is ahead
    agile = finalize_price_frame(frame.drop(columns=["provenance"]).assign(is_forecast=False), source="octopus",
                                 fetched_at=idx[6])
    assert list(published_rows("home", agile)["interval_start"]) == list(idx[6:])
    saved = finalize_price_frame(frame, source="amber_file", fetched_at=pd.Timestamp("1970-01-01", tz="UTC"))
    assert published_rows("home", saved).empty


def test_the_archive_reads_back_as_the_backtests_published_frames(store):
    site = make_site("aemo", region="VIC1")
    fetch_with_fallback(site, NOW, store, fetcher=Flaky(synthetic(NOW)))
    frames = published_frames(read_archive(store, "home"))
    assert list(frames) == [NOW]
    f = frames[NOW]
    assert list(f.columns) == ["import_price", "export_price"] and f.index.is_monotonic_increasing
