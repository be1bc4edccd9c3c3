"""Octopus: product and tariff discovery, pagination, p -> £, the short pre-16:00 horizon filled from a
seasonal profile (and flagged), block tariffs, export, retries; and the real Agile CSVs across UK DST days."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.prices.errors import PriceDataError
from powersync_pipelines.prices.octopus import fetch_octopus, read_octopus_file, read_rates_csv, tariff_code

from .conftest import FIXTURES, make_site

PAGE = 100  # the fixture server pages at 100 (the real API: up to 1500) so pagination is exercised
RATES = {
    "AGILE-24-10-01": json.loads((FIXTURES / "octopus_rates_agile_C.json").read_text()),
    "AGILE-OUTGOING-19-05-13": json.loads((FIXTURES / "octopus_rates_agile_outgoing_C.json").read_text()),
    "GO-VAR-22-10-14": json.loads((FIXTURES / "octopus_rates_go_C.json").read_text()),
}
JSON = {"Content-Type": "application/json"}


def rates_route(server, product: str, published_until: str | None = None):
    """Serve ``standard-unit-rates`` like the API: filtered to the period, newest first, paginated via ``next``."""
    cutoff = pd.Timestamp(published_until) if published_until else None

    def handler(path, query):
        lo, hi = pd.Timestamp(query["period_from"][0]), pd.Timestamp(query["period_to"][0])
        rows = [r for r in RATES[product]
                if pd.Timestamp(r["valid_from"]) < hi and (r["valid_to"] is None or pd.Timestamp(r["valid_to"]) > lo)
                and (cutoff is None or pd.Timestamp(r["valid_from"]) < cutoff)]
        page = int(query.get("page", ["1"])[0])
        chunk = rows[(page - 1) * PAGE: page * PAGE]
        nxt = None
        if page * PAGE < len(rows):
            q = {"page": page + 1, "period_from": query["period_from"][0], "period_to": query["period_to"][0]}
            nxt = f"{server.url}{path}?{urlencode(q)}"
        body = {"count": len(rows), "next": nxt, "previous": None, "results": chunk}
        return 200, JSON, json.dumps(body).encode()

    return handler


def serve_octopus(server, published_until: str | None = "2025-01-15T23:00:00Z") -> None:
    products = json.loads((FIXTURES / "octopus_products.json").read_text())
    detail = json.loads((FIXTURES / "octopus_product_detail_AGILE-24-10-01.json").read_text())

    def product_page(path, query):
        page = int(query.get("page", ["1"])[0])
        body = {"count": len(products), "next": f"{server.url}/v1/products/?page=2" if page == 1 else None,
                "previous": None, "results": products[:4] if page == 1 else products[4:]}
        return 200, JSON, json.dumps(body).encode()

    def detail_for(code):
        d = json.loads(json.dumps(detail).replace("AGILE-24-10-01", code))
        return 200, JSON, json.dumps(d).encode()

    server.routes["/v1/products/"] = product_page
    for code in RATES:
        server.routes[f"/v1/products/{code}/"] = detail_for(code)
        path = f"/v1/products/{code}/electricity-tariffs/{tariff_code(code, 'C')}/standard-unit-rates/"
        server.routes[path] = rates_route(server, code, published_until)


def octo_site(server, **kw):
    return make_site("octopus", gsp="C", base_url=f"{server.url}/v1", **kw)


def test_family_names_resolve_to_the_newest_available_product_and_its_tariff_code(server, fast_policy):
    serve_octopus(server)
    frame = fetch_octopus(octo_site(server, product="agile", export_product="agile_outgoing"),
                          pd.Timestamp("2025-01-15T10:00:00Z"), policy=fast_policy)
    assert frame.attrs["product"] == "AGILE-24-10-01"  # not the expired AGILE-24-04-03
    assert frame.attrs["tariff_code"] == "E-1R-AGILE-24-10-01-C"
    assert "/v1/products/" in server.paths_hit() and any("page" in h[1] for h in server.hits)


def test_pagination_follows_next_and_pence_become_pounds(server, fast_policy):
    serve_octopus(server, published_until=None)
    now = pd.Timestamp("2025-01-15T17:00:00Z")
    frame = fetch_octopus(octo_site(server, product="AGILE-24-10-01"), now, horizon_hours=24, policy=fast_policy,
                          history_hours=0)
    rate_hits = [h for h in server.hits if h[0].endswith("standard-unit-rates/")]
    assert len(rate_hits) >= 4  # 7 days of history + horizon at 100 per page
    assert rate_hits[0][1]["page_size"] == ["1500"]
    src = {r["valid_from"]: r["value_inc_vat"] for r in RATES["AGILE-24-10-01"]}
    assert frame.loc["2025-01-15T17:00:00Z", "import_price"] == pytest.approx(src["2025-01-15T17:00:00Z"] / 100)
    assert frame.index[0] == now and frame.index[-1] == pd.Timestamp("2025-01-16T16:30:00Z")
    assert not frame["is_forecast"].any() and set(frame["provenance"]) == {"published"}
    assert (frame["export_price"] == 0).all()  # no export product configured


def test_before_four_pm_the_rest_of_the_horizon_is_a_flagged_seasonal_profile(server, fast_policy):
    serve_octopus(server, published_until="2025-01-15T23:00:00Z")
    now = pd.Timestamp("2025-01-15T10:00:00Z")  # 10:00 UK: tomorrow's Agile prices are not out yet
    frame = fetch_octopus(octo_site(server, product="agile", export_product="agile_outgoing"), now,
                          horizon_hours=48, policy=fast_policy, history_hours=0)
    assert frame.index[0] == now and len(frame) == 96
    published = frame[frame["provenance"] == "published"]
    filled = frame[frame["provenance"] == "seasonal_profile"]
    assert published.index[-1] == pd.Timestamp("2025-01-15T22:30:00Z")
    assert len(filled) == 96 - len(published) and filled["is_forecast"].all() and not published["is_forecast"].any()
    # the profile is the median of the same half-hour over the previous 7 days
    src = pd.Series({pd.Timestamp(r["valid_from"]): r["value_inc_vat"] / 100 for r in RATES["AGILE-24-10-01"]})
    same_slot = src[(src.index.hour == 17) & (src.index.minute == 30)]
    same_slot = same_slot[(same_slot.index > pd.Timestamp("2025-01-08T23:00:00Z"))
                          & (same_slot.index < pd.Timestamp("2025-01-15T23:00:00Z"))]
    assert frame.loc["2025-01-16T17:30:00Z", "import_price"] == pytest.approx(same_slot.median())
    assert frame.loc["2025-01-16T17:30:00Z", "export_price"] > 0


def test_go_block_rates_expand_to_half_hours_and_prefer_direct_debit(server, fast_policy):
    serve_octopus(server, published_until=None)
    frame = fetch_octopus(octo_site(server, product="GO-VAR-22-10-14"), pd.Timestamp("2025-01-15T00:00:00Z"),
                          horizon_hours=24, policy=fast_policy, history_hours=0)
    assert len(frame) == 48 and (frame["provenance"] == "published").all()
    cheap = frame.between_time("00:30", "05:00")
    assert len(cheap) == 10 and (cheap["import_price"] == 0.085).all()
    assert set(frame["import_price"].round(4)) == {0.085, 0.2712}


def test_an_unknown_gsp_or_product_is_a_clear_error(server, fast_policy):
    serve_octopus(server)
    with pytest.raises(PriceDataError, match="one of agile, go"):
        fetch_octopus(octo_site(server, product="tracker_plus"), pd.Timestamp("2025-01-15T10:00:00Z"),
                      policy=fast_policy)
    with pytest.raises(PriceDataError, match="GSP region"):
        tariff_code("AGILE-24-10-01", "I")


def test_server_errors_are_retried_then_succeed(server, fast_policy, no_sleep):
    serve_octopus(server, published_until=None)
    ok = server.routes["/v1/products/AGILE-24-10-01/"]
    server.routes["/v1/products/AGILE-24-10-01/"] = [(502, {"Content-Type": "text/plain"}, b"bad gateway"), ok]
    frame = fetch_octopus(octo_site(server, product="AGILE-24-10-01"), pd.Timestamp("2025-01-15T17:00:00Z"),
                          horizon_hours=6, policy=fast_policy)
    assert no_sleep.delays == [1.0] and len(frame) > 0


def test_saved_json_page_reads_for_the_cli():
    df = read_octopus_file(FIXTURES / "octopus_page_agile_C.json")
    assert len(df) == 100 and (df.index.to_series().diff().dropna() == pd.Timedelta(minutes=30)).all()
    assert df["import_price"].iloc[-1] == pytest.approx(RATES["AGILE-24-10-01"][0]["value_inc_vat"] / 100)


# -- real CSVs ----------------------------------------------------------------------------------------------
def local_day_counts(s: pd.Series) -> pd.Series:
    return s.groupby(s.index.tz_convert("Europe/London").date).size()


def test_real_agile_import_has_46_and_50_half_hours_on_uk_clock_change_days(real_data):
    s = read_rates_csv(real_data / "octopus/agile_import/csv_agile_J_South_Eastern_England.csv")
    counts = local_day_counts(s)
    assert counts[pd.Timestamp("2023-03-26").date()] == 46  # clocks forward: a 23-hour day
    assert counts[pd.Timestamp("2023-10-29").date()] == 50  # clocks back: a 25-hour day
    assert counts[pd.Timestamp("2023-06-01").date()] == 48
    assert s.min() == pytest.approx(-0.1994, abs=1e-4) and s.max() == pytest.approx(0.8214, abs=1e-4)


def test_real_agile_headerless_export_and_outgoing_parse_with_utc_starts(real_data):
    a = read_rates_csv(real_data / "octopus/agile_import/csv_agile_A_Eastern_England.csv")
    assert a.index[0] == pd.Timestamp("2018-02-19T00:00:00Z") and a.iloc[0] == pytest.approx(0.092715)
    assert a.max() <= 0.35 + 1e-9  # the 2018-21 Agile cap of 35p
    out = read_rates_csv(real_data / "octopus/agile_outgoing/csv_agileoutgoing_C_London.csv")
    assert out.index[0] == pd.Timestamp("2019-05-15T23:00:00Z") and out.iloc[0] == pytest.approx(0.0429)
    assert out.min() >= 0
    counts = local_day_counts(out)
    assert counts[pd.Timestamp("2022-03-27").date()] == 46 and counts[pd.Timestamp("2022-10-30").date()] == 50


def test_real_import_and_export_files_pair_into_one_frame(real_data):
    df = read_octopus_file(real_data / "octopus/agile_import/csv_agile_J_South_Eastern_England.csv",
                           real_data / "octopus/agile_outgoing/csv_agileoutgoing_C_London.csv")
    assert df.index[0] == pd.Timestamp("2020-01-01T00:00:00Z")
    assert df.index[-1] <= pd.Timestamp("2024-05-01T21:30:00Z")
    assert np.mean(df["import_price"] > df["export_price"]) > 0.9
