"""The Solcast client against a loopback peer serving the real rooftop response: the first cycle calls and
serves Solcast's P50 with P10/P90, later cycles read the DuckDB cache, the 11th call of a UTC day is never
made (counted across processes), and every failure (no key, 429, 500, bad JSON, HTML, 401) serves pvlib
with provenance saying why."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.control import cycle
from powersync_pipelines.forecasts.solar import (
    PVLIB_MODEL,
    site_solar_forecast,
    solar_forecast_kw,
    store_solar_forecast,
    stored_solar_forecast,
)
from powersync_pipelines.forecasts.solcast import account_of, reserve_call
from powersync_pipelines.storage import HistoryStore
from powersync_pipelines.timegrid import horizon_index

from ._solcast import (
    ISSUED,
    JSON,
    KEY,
    KEY_ENV,
    forecasts_path,
    real_response,
    response_moved_to,
    solcast_peer,
    solcast_site,
)

MIN5 = pd.Timedelta(minutes=5)


@pytest.fixture
def peer():
    with solcast_peer() as srv:
        yield srv


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)


def plan_cycle(site, store, now, wall=None, recent=None):
    return site_solar_forecast(site, horizon_index(now), store, now, wall_now=wall or now, recent=recent)


def _clear_cache(store: HistoryStore) -> None:
    with store.connect() as con:
        con.execute("DELETE FROM solcast_forecasts")


def test_the_first_cycle_calls_solcast_and_serves_its_p50_p10_p90(peer, key, store, real_data, caplog):
    peer.routes[forecasts_path()] = (200, JSON, real_response(real_data))
    site = solcast_site(peer.url)
    fc = plan_cycle(site, store, ISSUED)
    assert len(peer.hits) == 1
    path, query, headers = peer.hits[0]
    assert path == forecasts_path() and query == {"format": ["json"], "hours": ["72"]}
    assert headers["Authorization"] == f"Bearer {KEY}"
    p = fc.provenance
    assert (p.source, p.model, p.reason, p.call_made, p.calls_today, p.daily_limit) == ("solcast", "solcast", None, True, 1, 10)
    noon = pd.Timestamp("2024-12-28T11:35Z")  # in the period ending 12:00Z
    assert (fc.p10[noon], fc.kw[noon], fc.p90[noon]) == (0.0261, 0.18, 1.1601)
    assert (fc.p10 <= fc.kw).all() and (fc.kw <= fc.p90).all()
    assert len(fc.kw) == 576 and fc.kw.index[0] == ISSUED
    store_solar_forecast(store, site.id, fc, ISSUED)
    stored = stored_solar_forecast(store, site.id, fc.kw.index)
    assert stored.loc[noon, ["value", "p10", "p90"]].tolist() == [0.18, 0.0261, 1.1601]
    assert (stored["model"] == "solcast").all()
    ledger = store.query("SELECT * FROM solcast_calls")
    assert ledger["status"].tolist() == ["ok"] and ledger["periods"].tolist() == [97]
    assert ledger["account"].tolist() == [account_of(KEY)] and KEY not in ledger.to_string()
    assert KEY not in caplog.text


def test_the_next_cycles_read_the_cache_without_a_call_even_from_another_process(peer, key, store, real_data, tmp_path):
    peer.routes[forecasts_path()] = (200, JSON, real_response(real_data))
    site = solcast_site(peer.url)
    first = plan_cycle(site, store, ISSUED)
    second = plan_cycle(site, store, ISSUED + MIN5)
    other_process = HistoryStore(store.location)  # a Dagster run or the CLI opening the same history
    third = plan_cycle(site, other_process, ISSUED + 2 * MIN5)
    assert len(peer.hits) == 1
    for fc in (second, third):
        assert fc.provenance.source == "solcast" and not fc.provenance.call_made
        assert fc.provenance.fetched_at == ISSUED.isoformat()
    pd.testing.assert_series_equal(second.kw.iloc[:-1], first.kw.iloc[1:])


def test_the_eleventh_call_of_a_utc_day_is_not_made(peer, key, store, real_data):
    peer.routes[forecasts_path()] = (200, JSON, real_response(real_data))
    site = solcast_site(peer.url)
    for k in range(11):  # each cycle finds the cache gone, so each wants a call
        _clear_cache(store)
        now = ISSUED + k * pd.Timedelta(minutes=30)
        fc = plan_cycle(site, store, now)
    assert now.date() == ISSUED.date() and len(peer.hits) == 10
    p = fc.provenance
    assert (p.source, p.reason, p.call_made, p.calls_today) == ("pvlib", "budget_spent", False, 10)
    assert p.model == f"{PVLIB_MODEL}[solcast:budget_spent]" and "10 Solcast calls" in p.detail
    pd.testing.assert_series_equal(fc.kw, solar_forecast_kw(site, horizon_index(now)))
    # the quota resets at 00:00 UTC, not at local midnight
    fc = plan_cycle(site, store, pd.Timestamp("2024-12-27T00:05Z"))
    assert len(peer.hits) == 11 and fc.provenance.source == "solcast"


@pytest.mark.slow  # three interpreters importing pandas and duckdb
def test_the_budget_is_shared_by_processes_one_call_left_is_taken_once(store):
    wall = pd.Timestamp("2024-12-26T12:00Z")
    for n in range(9):
        assert reserve_call(store, "acct", f"other-{n}", wall, 10, None) is not None
    script = textwrap.dedent(f"""
        import sys, pandas as pd
        from powersync_pipelines.forecasts.solcast import reserve_call
        from powersync_pipelines.storage import HistoryStore
        got = reserve_call(HistoryStore({str(store.path)!r}), "acct", sys.argv[1], pd.Timestamp({wall.isoformat()!r}), 10, None)
        print("took" if got else "refused")
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, f"roof-{i}"], stdout=subprocess.PIPE, text=True)
             for i in range(2)]
    answers = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
    assert answers == ["refused", "took"]
    assert store.query("SELECT count(*) AS n FROM solcast_calls")["n"].iloc[0] == 10


def test_no_key_means_pvlib_and_no_call(peer, store, real_data, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    peer.routes[forecasts_path()] = (200, JSON, real_response(real_data))
    site = solcast_site(peer.url)
    fc = plan_cycle(site, store, ISSUED)
    assert peer.hits == []
    assert (fc.provenance.source, fc.provenance.reason) == ("pvlib", "key_missing")
    assert fc.provenance.model == f"{PVLIB_MODEL}[solcast:key_missing]" and KEY_ENV in fc.provenance.detail
    assert fc.p10 is None and fc.p90 is None


QUOTA = b'{"response_status":{"error_code":"TooManyRequests","message":"You have exceeded your free daily limit."}}'


@pytest.mark.parametrize("reply, reason", [
    ((429, JSON, QUOTA), "quota_exhausted"),
    ((429, JSON, b"{}"), "http_429"),
    ((500, JSON, b'{"response_status":{"message":"internal error"}}'), "http_500"),
    ((200, JSON, b'{"forecasts": [{"pv_estimate": 0.1, "period_end": '), "malformed"),
    ((200, {"Content-Type": "text/html"}, b"<html><body>Please log in to the hotel wifi</body></html>"), "malformed"),
    ((401, JSON, b'{"response_status":{"error_code":"Unauthorized"}}'), "http_401"),
], ids=["quota_429", "busy_429", "server_500", "malformed_json", "html_page", "key_401"])
def test_a_failed_call_serves_pvlib_says_why_and_is_not_hammered(peer, key, store, reply, reason):
    peer.routes[forecasts_path()] = reply
    site = solcast_site(peer.url)
    idx = horizon_index(ISSUED)
    fc = plan_cycle(site, store, ISSUED)
    assert len(peer.hits) == 1
    p = fc.provenance
    assert (p.source, p.reason, p.call_made) == ("pvlib", reason, True)
    assert p.model == f"{PVLIB_MODEL}[solcast:{reason}]" and p.detail and KEY not in p.detail
    pd.testing.assert_series_equal(fc.kw, solar_forecast_kw(site, idx))
    store_solar_forecast(store, site.id, fc, ISSUED)
    assert stored_solar_forecast(store, site.id, idx)["model"].unique().tolist() == [p.model]
    again = plan_cycle(site, store, ISSUED + MIN5)  # five minutes later: no second call
    assert len(peer.hits) == 1 and again.provenance.source == "pvlib" and not again.provenance.call_made


@pytest.mark.parametrize("body", [
    b'{"response_status":{"error_code":"BadRequest","message":"bad key sk-solcast-test-SECRET-7f3a for site"}}',
    b"Bad request: Authorization Bearer sk-solcast-test-SECRET-7f3a not accepted",
], ids=["json_message", "plain_text"])
def test_a_server_echoing_the_key_leaves_it_out_of_the_error_the_ledger_and_the_log(peer, key, store, body, caplog):
    """Solcast may echo the request's bearer key in a 400; that text reaches provenance and ``solcast_calls``."""
    caplog.set_level(logging.DEBUG)
    peer.routes[forecasts_path()] = (400, JSON, body)
    fc = plan_cycle(solcast_site(peer.url), store, ISSUED)
    assert (fc.provenance.source, fc.provenance.reason) == ("pvlib", "http_400") and "HTTP 400" in fc.provenance.detail
    errors = store.query("SELECT error FROM solcast_calls")["error"].dropna().tolist()
    assert errors and all("HTTP 400" in e for e in errors)
    text = fc.provenance.detail + " ".join(errors) + caplog.text
    assert KEY not in text and KEY[:12] not in text


def test_after_a_server_error_the_next_call_waits_then_recovers(peer, key, store, real_data):
    peer.routes[forecasts_path()] = [(500, JSON, b"{}"), (200, JSON, real_response(real_data))]
    site = solcast_site(peer.url)
    plan_cycle(site, store, ISSUED)
    waiting = plan_cycle(site, store, ISSUED + MIN5)
    assert (waiting.provenance.reason, len(peer.hits)) == ("backoff", 1)
    assert "http_500" in waiting.provenance.detail
    back = plan_cycle(site, store, ISSUED + 4 * MIN5)  # 20 min on, past the 15-min backoff
    assert len(peer.hits) == 2 and back.provenance.model == "solcast"


def test_a_401_stops_calls_for_the_rest_of_the_utc_day(peer, key, store):
    peer.routes[forecasts_path()] = (401, JSON, b"{}")
    site = solcast_site(peer.url)
    for k in range(4):
        fc = plan_cycle(site, store, ISSUED + k * pd.Timedelta(hours=1))
    assert len(peer.hits) == 1 and fc.provenance.reason == "http_401"


def test_a_failed_refresh_keeps_serving_the_cache_and_pvlib_fills_past_its_end(peer, key, store, real_data):
    peer.routes[forecasts_path()] = [(200, JSON, real_response(real_data)), (500, JSON, b"{}")]
    site = solcast_site(peer.url)
    plan_cycle(site, store, ISSUED)
    morning = pd.Timestamp("2024-12-27T09:00Z")  # daylight, a new UTC day: a refresh is due and fails
    fc = plan_cycle(site, store, morning)
    assert len(peer.hits) == 2
    p = fc.provenance
    assert (p.source, p.model, p.refresh_error, p.reason) == ("solcast", "solcast+pvlib_fill", "http_500", None)
    idx = horizon_index(morning)
    tail = idx >= pd.Timestamp("2024-12-28T17:30Z")  # the cached response ends here
    assert p.filled_slots == int(tail.sum()) == 186
    np.testing.assert_array_equal(fc.kw[tail], solar_forecast_kw(site, idx)[tail])
    assert fc.p10[tail].isna().all() and fc.p10[~tail].notna().all()


def test_a_cache_older_than_the_limit_is_not_planned_on(peer, key, store, real_data):
    peer.routes[forecasts_path()] = [(200, JSON, real_response(real_data)), (500, JSON, b"{}")]
    site = solcast_site(peer.url, solcast_max_age_hours=1)
    plan_cycle(site, store, ISSUED)
    fc = plan_cycle(site, store, ISSUED + pd.Timedelta(hours=2))  # cache too old: refresh, which fails
    assert len(peer.hits) == 2 and (fc.provenance.source, fc.provenance.reason) == ("pvlib", "http_500")


def test_a_replay_clock_never_calls_solcast(peer, key, store, real_data):
    peer.routes[forecasts_path()] = (200, JSON, real_response(real_data))
    site = solcast_site(peer.url)
    fc = plan_cycle(site, store, ISSUED, wall=pd.Timestamp("2026-03-01T02:00Z"))
    assert peer.hits == [] and fc.provenance.reason == "clock_not_live"


def test_several_arrays_are_summed(peer, key, store, real_data):
    body = real_response(real_data)
    peer.routes[forecasts_path("east-0001")] = (200, JSON, body)
    peer.routes[forecasts_path("west-0002")] = (200, JSON, body)
    site = solcast_site(peer.url, resource_id="east-0001, west-0002")
    fc = plan_cycle(site, store, ISSUED)
    single = plan_cycle(solcast_site(peer.url, resource_id="east-0001"), store, ISSUED)
    assert sorted(h[0] for h in peer.hits) == [forecasts_path("east-0001"), forecasts_path("west-0002")]
    np.testing.assert_allclose(fc.kw, 2 * single.kw)
    np.testing.assert_allclose(fc.p90, 2 * single.p90)


def test_base_url_from_the_environment_and_the_sites_file_wins(peer, key, store, real_data, monkeypatch):
    peer.routes[forecasts_path()] = (200, JSON, real_response(real_data))
    monkeypatch.setenv("POWERSYNC_SOLCAST_BASE_URL", peer.url)
    assert plan_cycle(solcast_site(None), store, ISSUED).provenance.source == "solcast"
    assert len(peer.hits) == 1
    monkeypatch.setenv("POWERSYNC_SOLCAST_BASE_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    _clear_cache(store)
    fc = plan_cycle(solcast_site(peer.url), store, ISSUED + pd.Timedelta(minutes=30))
    assert len(peer.hits) == 2 and fc.provenance.source == "solcast"


def test_the_nowcast_scales_solcast_and_its_quantiles_by_the_measured_half_hour(peer, key, store, real_data):
    peer.routes[forecasts_path()] = (200, JSON, real_response(real_data))
    site = solcast_site(peer.url)
    now = pd.Timestamp("2024-12-27T11:00Z")
    plain = plan_cycle(site, store, now)
    recent_idx = pd.date_range(now - 6 * MIN5, now, freq="5min", inclusive="left")
    measured = pd.Series(0.5 * 0.1265, index=recent_idx)  # half of what Solcast said for 10:30-11:00
    fc = plan_cycle(site, store, now, recent=measured)
    assert len(peer.hits) == 1
    assert fc.provenance.model == "solcast+pvlib_fill+nowcast" and fc.provenance.nowcast
    assert fc.kw.iloc[0] == pytest.approx(0.5 * plain.kw.iloc[0])
    assert fc.p10.iloc[0] == pytest.approx(0.5 * plain.p10.iloc[0])
    assert fc.p90.iloc[0] == pytest.approx(0.5 * plain.p90.iloc[0])
    assert fc.kw.iloc[-1] == pytest.approx(plain.kw.iloc[-1], abs=1e-3)  # faded back by 48 h


def test_the_live_stage_stores_solcast_with_its_quantiles_and_provenance(peer, key, store, real_data):
    """``cycle.solar_forecast`` on the wall clock: the real response's shape, moved to today."""
    now = pd.Timestamp.now(tz="UTC").floor("5min")
    peer.routes[forecasts_path()] = (200, JSON, response_moved_to(real_data, now))
    site = solcast_site(peer.url)
    solar = cycle.solar_forecast(site, now, store)
    assert len(peer.hits) == 1
    assert solar.attrs["provenance"]["source"] == "solcast"
    rows = store.query("SELECT value, p10, p90, model FROM forecasts WHERE site_id = 'roof' AND kind = 'solar'")
    assert len(rows) == 576 and set(rows["model"]) == {"solcast"}
    assert rows["p10"].notna().all() and (rows["p10"] <= rows["value"]).all() and (rows["value"] <= rows["p90"]).all()
    assert rows["p90"].max() == pytest.approx(1.2174)
