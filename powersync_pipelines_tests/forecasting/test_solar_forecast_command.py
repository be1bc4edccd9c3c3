"""``powersync forecast solar``: what the planner would get now, where it came from and the Solcast budget,
through the same cache and ledger as the pipeline (a second run makes no call)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from powersync_pipelines import cli

from ._solcast import (
    KEY,
    KEY_ENV,
    forecasts_path,
    response_moved_to,
    solcast_peer,
    solcast_site_doc,
    write_sites,
)

JSON_CT = {"Content-Type": "application/json"}


def test_the_command_shows_solcast_with_its_provenance_and_budget(tmp_path, real_data, monkeypatch, capsys):
    monkeypatch.setenv(KEY_ENV, KEY)
    with solcast_peer() as peer:
        peer.routes[forecasts_path()] = (200, JSON_CT, response_moved_to(real_data, pd.Timestamp.now(tz="UTC")))
        sites = write_sites(tmp_path / "sites.yaml", solcast_site_doc(peer.url))
        assert cli.main(["forecast", "solar", "--site-id", "roof", "--sites", str(sites), "--format", "json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert cli.main(["forecast", "solar", "--site-id", "roof", "--sites", str(sites)]) == 0
        table = capsys.readouterr().out
    assert len(peer.hits) == 1  # the second run read the cache
    p = doc["provenance"]
    assert (p["source"], p["model"], p["calls_today"], p["daily_limit"]) == ("solcast", "solcast", 1, 10)
    assert len(doc["intervals"]) == 576 and set(doc["intervals"][0]) == {"interval_start", "solar_kw", "p10_kw", "p90_kw"}
    e = doc["energy_kwh_48h"]
    assert e["p10"] <= e["p50"] <= e["p90"]
    assert "solcast (source solcast)" in table and "Solcast calls today (UTC): 1 of 10" in table
    assert KEY not in table and KEY not in json.dumps(doc)


def test_without_the_key_the_command_says_why_it_shows_pvlib(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(KEY_ENV, raising=False)
    sites = write_sites(tmp_path / "sites.yaml", solcast_site_doc("http://127.0.0.1:9"))
    assert cli.main(["forecast", "solar", "--site-id", "roof", "--sites", str(sites), "--store"]) == 0
    out = capsys.readouterr().out
    assert "pvlib_clearsky_climatology[solcast:key_missing]" in out
    assert f"Solcast not used: key_missing: environment variable {KEY_ENV} is not set" in out


@pytest.mark.parametrize("argv, msg", [
    (["--site-id", "nope"], "no site with id 'nope'"),
    (["--site-id", "roof", "--now", "yesterday-ish"], "powersync forecast:"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, msg):
    sites = write_sites(tmp_path / "sites.yaml", solcast_site_doc(None))
    assert cli.main(["forecast", "solar", "--sites", str(sites), *argv]) == 2
    err = capsys.readouterr().err
    assert msg in err and len(err.strip().splitlines()) == 1
