"""``powersync prices``: the CSV contract, saved payloads of every kind, and exit code 2 with a one-line reason
for bad input."""

from __future__ import annotations

import csv
import io
import json

import httpx
import pandas as pd
import pytest
import respx

from powersync_pipelines.cli import main

from .conftest import FIXTURES

CONTRACT = ["interval_start", "import_price", "export_price", "spike_status", "is_forecast"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["prices", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_amber_day_file_gives_288_contract_rows(capsys, real_data):
    f = real_data / "amber/enkit-matlab/sa_prices_5min/20250115.json"
    code, out, _ = run(capsys, "--provider", "amber", "--file", str(f), "--format", "csv")
    assert code == 0
    table = rows(out)
    assert len(table) == 288 and list(table[0]) == CONTRACT
    assert table[0]["interval_start"] == "2025-01-14T14:00:00Z" and table[0]["is_forecast"] == "false"
    assert float(table[0]["import_price"]) == pytest.approx(0.387935, abs=1e-6)


def test_aemo_report_csv_adds_rrp_as_published(capsys):
    f = FIXTURES / "PUBLIC_DISPATCHIS_202512270010_0000000495867520.CSV"
    code, out, _ = run(capsys, "--provider", "aemo", "--region", "SA1", "--file", str(f), "--format", "csv")
    table = rows(out)
    assert code == 0 and list(table[0]) == [*CONTRACT, "rrp"]
    assert table == [{"interval_start": "2025-12-26T14:05:00Z", "import_price": "16.632", "export_price": "15",
                      "spike_status": "spike", "is_forecast": "false", "rrp": "15000"}]


def test_from_and_to_select_a_window_and_json_carries_every_column(capsys):
    f = FIXTURES / "PUBLIC_PREDISPATCHIS_202512270030_20251227000120.CSV"
    code, out, _ = run(capsys, "--provider", "aemo", "--region", "NSW1", "--file", str(f), "--format", "json",
                       "--from", "2025-12-27T00:00:00Z", "--to", "2025-12-27T01:00")
    data = json.loads(out)
    assert code == 0 and len(data) == 12
    assert data[0]["interval_start"] == "2025-12-27T00:00:00Z" and data[0]["provenance"] == "predispatch"
    assert data[0]["is_forecast"] is True and data[0]["price_low"] is None


def test_octopus_import_and_export_files_print_as_a_table(capsys, real_data):
    imp = real_data / "octopus/agile_import/csv_agile_J_South_Eastern_England.csv"
    exp = real_data / "octopus/agile_outgoing/csv_agileoutgoing_C_London.csv"
    # the UK local day of 26 Mar 2023 (clocks forward) runs 00:00 GMT .. 00:00 BST = 23:00 UTC: 46 half-hours
    code, out, _ = run(capsys, "--provider", "octopus", "--gsp", "J", "--file", str(imp), "--export-file", str(exp),
                       "--from", "2023-03-26T00:00:00Z", "--to", "2023-03-26T23:00:00Z")
    assert code == 0 and "46 intervals from octopus_file" in out
    assert out.count("published") == 46


@pytest.mark.parametrize("argv, reason", [
    (["--provider", "aemo"], "needs --region"),
    (["--provider", "octopus", "--gsp", "O"], "gsp"),
    (["--provider", "globird", "--region", "VIC1"], "static TOU"),
    (["--provider", "amber", "--file", "/no/such/file.json"], "file not found"),
    (["--provider", "amber", "--file", str(FIXTURES / "octopus_products.json")], "malformed payload"),
    (["--provider", "aemo", "--region", "VIC1", "--from", "yesterday-ish",
      "--file", str(FIXTURES / "listing_p5.html")], "not an ISO 8601 time"),
    (["--export-file", "x.csv", "--provider", "octopus", "--gsp", "C"], "--export-file needs --file"),
])
def test_bad_input_exits_2_with_a_one_line_reason(capsys, argv, reason):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert reason in err and len(err.strip().splitlines()) == 1


@respx.mock
def test_live_amber_through_the_cli_with_a_token_from_the_environment(capsys, monkeypatch):
    monkeypatch.setenv("AMBER_API_TOKEN", "psk_cli_secret")
    monkeypatch.setenv("POWERSYNC_AMBER_BASE_URL", "http://amber.test/v1")
    respx.get("http://amber.test/v1/sites/S1/prices/current").mock(
        return_value=httpx.Response(200, content=(FIXTURES / "amber_prices_current_5min.json").read_bytes()))
    code, out, err = run(capsys, "--provider", "amber", "--amber-site-id", "S1", "--format", "csv",
                         "--now", "2025-01-15T03:02:00Z", "--horizon", "2")
    assert code == 0, err
    table = rows(out)
    assert table[0]["interval_start"] == "2025-01-15T02:00:00Z"
    assert "psk_cli_secret" not in out + err


@respx.mock
def test_a_provider_outage_exits_1_with_the_provider_and_problem(capsys, monkeypatch):
    monkeypatch.setenv("AMBER_API_TOKEN", "psk_cli_secret")
    monkeypatch.setenv("POWERSYNC_AMBER_BASE_URL", "http://amber.test/v1")
    respx.get("http://amber.test/v1/sites/S1/prices/current").mock(return_value=httpx.Response(401))
    code, _, err = run(capsys, "--provider", "amber", "--amber-site-id", "S1")
    assert code == 1 and "amber: token invalid" in err


def test_the_demo_sites_file_provider_is_used_with_site_id(capsys):
    code, out, err = run(capsys, "--site-id", "demo", "--format", "csv", "--now", "2024-02-12T20:00:00Z",
                         "--horizon", "1")
    assert code == 0, err
    table = rows(out)
    assert table[-1]["interval_start"] == "2024-02-12T20:55:00Z" and table[-1]["is_forecast"] == "true"
    assert pd.Timestamp(table[0]["interval_start"]) < pd.Timestamp("2024-02-12T20:00:00Z")
