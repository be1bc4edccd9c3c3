"""NEMWEB: listings, zipped C/I/D reports parsed by column name, NEM time -> UTC start, and a full fetch from a
loopback NEMWEB with our own report fixtures."""

from __future__ import annotations

import io
import zipfile

import pandas as pd
import pytest

from powersync_pipelines.config import RetailMapping
from powersync_pipelines.prices import nemweb
from powersync_pipelines.prices.aemo import fetch_aemo, fetch_dispatch_price, frame_from_rrp, read_aemo_file
from powersync_pipelines.prices.errors import PriceDataError

from .conftest import FIXTURES, make_site

DISPATCH = FIXTURES / "PUBLIC_DISPATCHIS_202512270010_0000000495867520.CSV"
P5MIN = FIXTURES / "PUBLIC_P5MIN_202512270010_20251227000620.CSV"
PREDISPATCH = FIXTURES / "PUBLIC_PREDISPATCHIS_202512270030_20251227000120.CSV"
NOW = pd.Timestamp("2025-12-26T14:07:00Z")  # 00:07 NEM time on 27 Dec


def zipped(path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(path.name, path.read_bytes())
    return buf.getvalue()


def serve_nemweb(server, dispatch: bytes | None = None) -> None:
    html = {"Content-Type": "text/html"}
    zipct = {"Content-Type": "application/x-zip-compressed"}
    server.routes.update({
        "/Reports/Current/DispatchIS_Reports/": (200, html, (FIXTURES / "listing_dispatchis.html").read_bytes()),
        "/Reports/Current/P5_Reports/": (200, html, (FIXTURES / "listing_p5.html").read_bytes()),
        "/Reports/Current/PredispatchIS_Reports/": (200, html, (FIXTURES / "listing_predispatchis.html").read_bytes()),
        # the listing's hrefs are upper-case /Reports/CURRENT/... as the real server emits them
        "/Reports/CURRENT/DispatchIS_Reports/PUBLIC_DISPATCHIS_202512270010_0000000495867520.zip":
            (200, zipct, dispatch if dispatch is not None else zipped(DISPATCH)),
        "/Reports/CURRENT/P5_Reports/PUBLIC_P5MIN_202512270010_20251227000620.zip": (200, zipct, zipped(P5MIN)),
        "/Reports/CURRENT/PredispatchIS_Reports/PUBLIC_PREDISPATCHIS_202512270030_20251227000120.zip":
            (200, zipct, zipped(PREDISPATCH)),
    })


def test_listing_is_parsed_by_file_name_and_the_newest_is_last():
    files = nemweb.parse_listing((FIXTURES / "listing_dispatchis.html").read_text(), "dispatch")
    assert [f.stamp for f in files] == ["202512262355", "202512270000", "202512270005", "202512270010"]
    assert files[-1].href == "/Reports/CURRENT/DispatchIS_Reports/PUBLIC_DISPATCHIS_202512270010_0000000495867520.zip"
    apache = ('<html><body><img src="/icons/back.gif"><a href="?C=N;O=D">Name</a>'
              '<a href="PUBLIC_DISPATCHIS_202601010005_0000000500000001.zip">x</a></body></html>')
    assert nemweb.parse_listing(apache, "dispatch")[0].href == "PUBLIC_DISPATCHIS_202601010005_0000000500000001.zip"


def test_dispatch_price_table_is_read_by_column_name_and_nem_end_becomes_utc_start():
    tables = nemweb.parse_cid(DISPATCH.read_text(), DISPATCH.name)
    assert set(tables) == {"DISPATCH.CASE_SOLUTION", "DISPATCH.PRICE", "DISPATCH.REGIONSUM"}
    assert tables["DISPATCH.PRICE"].shape == (5, 66)
    sa = nemweb.dispatch_prices(tables, "SA1")
    # SETTLEMENTDATE 2025/12/27 00:10 NEM = interval END -> start 00:05 NEM = 14:05 UTC the day before
    assert list(sa.index) == [pd.Timestamp("2025-12-26T14:05:00Z")]
    assert sa["rrp"].iloc[0] == 15000.0 and sa["price_status"].iloc[0] == "FIRM"
    assert nemweb.dispatch_prices(tables, "VIC1")["rrp"].iloc[0] == -12.34


def test_reordered_columns_give_the_same_prices():
    """Real files do not follow the MMS Data Model order; a parser by position would read the wrong column."""
    lines = DISPATCH.read_text().splitlines()
    out = []
    for line in lines:
        parts = line.split(",")
        if parts[:3] in (["I", "DISPATCH", "PRICE"], ["D", "DISPATCH", "PRICE"]):
            head, cols = parts[:4], parts[4:]
            cols = cols[::-1]  # every column moved
            line = ",".join(head + cols)
        out.append(line)
    tables = nemweb.parse_cid("\r\n".join(out) + "\r\n", "shuffled")
    assert nemweb.dispatch_prices(tables, "NSW1")["rrp"].iloc[0] == 52.1


def test_p5min_uses_the_pricing_run_and_predispatch_is_thirty_minute_period_starts():
    p5 = nemweb.p5min_prices(nemweb.parse_cid(P5MIN.read_text()), "NSW1")
    assert len(p5) == 12 and p5.index[0] == pd.Timestamp("2025-12-26T14:05:00Z")
    assert p5["rrp"].iloc[0] == 52.1  # not the INTERVENTION=1 row's 999.99
    pd_ = nemweb.predispatch_prices(nemweb.parse_cid(PREDISPATCH.read_text()), "NSW1")
    assert pd_.index[0] == pd.Timestamp("2025-12-26T14:00:00Z")  # DATETIME 00:30 NEM = end of 00:00-00:30
    assert pd_.index[-1] == pd.Timestamp("2025-12-28T17:30:00Z")  # ... to 04:00 NEM on the 29th
    assert (pd_.index.to_series().diff().dropna() == pd.Timedelta(minutes=30)).all()


def test_live_fetch_combines_dispatch_p5min_and_predispatch_on_one_five_minute_grid(server):
    serve_nemweb(server)
    site = make_site("aemo", region="SA1", base_url=server.url, spike_threshold_per_mwh=5000)
    frame = fetch_aemo(site, NOW, horizon_hours=72)
    assert frame.index[0] == pd.Timestamp("2025-12-26T14:05:00Z")
    assert (frame.index.to_series().diff().dropna() == pd.Timedelta(minutes=5)).all()
    # predispatch ends 04:00 NEM on the 29th: the horizon is what AEMO published, never padded
    assert frame.index[-1] == pd.Timestamp("2025-12-28T17:55:00Z")
    assert fetch_aemo(site, NOW, horizon_hours=24).index[-1] == pd.Timestamp("2025-12-27T14:05:00Z")
    assert frame["provenance"].iloc[0] == "dispatch" and not frame["is_forecast"].iloc[0]
    assert frame.loc["2025-12-26T14:10:00Z", "provenance"] == "p5min"
    assert frame.loc["2025-12-26T15:05:00Z", "provenance"] == "predispatch"
    # SA1: actual $15,000 -> spike; P5MIN's $9,000+ forecasts -> potential
    assert frame["spike_status"].iloc[0] == "spike"
    assert set(frame.loc["2025-12-26T14:10:00Z":"2025-12-26T14:15:00Z", "spike_status"]) == {"potential"}
    # retail mapping (default: +12 c network, 10% GST): 15000 $/MWh -> (15 + 0.12) * 1.1 $/kWh
    assert frame["import_price"].iloc[0] == pytest.approx((15.0 + 0.12) * 1.1)
    assert frame["rrp"].iloc[0] == 15000.0
    ua = [h[2].get("User-Agent", "") for h in server.hits]
    assert all(u.startswith("Mozilla/5.0") for u in ua)  # NEMWEB 403s bare clients


def test_spike_watch_poll_reads_only_the_dispatch_file(server):
    serve_nemweb(server)
    name, price = fetch_dispatch_price("SA1", base=server.url)
    assert name.startswith("PUBLIC_DISPATCHIS_202512270010") and price["rrp"].iloc[0] == 15000.0
    assert len(server.hits) == 2


def test_a_truncated_zip_is_an_error_naming_the_file(server):
    serve_nemweb(server, dispatch=zipped(DISPATCH)[:300])
    site = make_site("aemo", region="SA1", base_url=server.url)
    with pytest.raises(PriceDataError) as err:
        fetch_aemo(site, NOW)
    assert err.value.problem == "truncated_zip" and "PUBLIC_DISPATCHIS_202512270010" in str(err.value)


def test_a_cut_off_csv_without_its_footer_is_an_error():
    text = DISPATCH.read_text()
    with pytest.raises(PriceDataError, match="truncated report"):
        nemweb.parse_cid(text[: len(text) // 2], "cut.CSV")


def test_an_html_error_page_instead_of_a_zip_is_named(server):
    serve_nemweb(server, dispatch=b"<html><body><h1>403 Forbidden</h1></body></html>")
    with pytest.raises(PriceDataError, match="html instead of report"):
        fetch_aemo(make_site("aemo", region="SA1", base_url=server.url), NOW)


def test_a_stuck_mirror_serving_an_old_dispatch_file_is_refused(server):
    serve_nemweb(server)
    with pytest.raises(PriceDataError, match="stale report"):
        fetch_aemo(make_site("aemo", region="SA1", base_url=server.url), NOW + pd.Timedelta(hours=2))


def test_saved_report_files_zip_or_csv_read_for_the_cli(tmp_path):
    z = tmp_path / "PUBLIC_DISPATCHIS_202512270010_0000000495867520.zip"
    z.write_bytes(zipped(DISPATCH))
    a = read_aemo_file(z, "QLD1")
    b = read_aemo_file(DISPATCH, "QLD1")
    pd.testing.assert_frame_equal(a, b)
    pre = read_aemo_file(PREDISPATCH, "QLD1")
    assert (pre.index.to_series().diff().dropna() == pd.Timedelta(minutes=5)).all() and pre["is_forecast"].all()


def test_rrp_passed_as_dollars_per_kwh_is_a_unit_error():
    idx = pd.date_range("2025-01-01", periods=24, freq="5min", tz="UTC", name="interval_start")
    raw = pd.DataFrame({"rrp": [0.05] * 24, "is_forecast": False}, index=idx)
    with pytest.raises(PriceDataError, match="wrong units"):
        frame_from_rrp(raw, RetailMapping(), 300.0)
