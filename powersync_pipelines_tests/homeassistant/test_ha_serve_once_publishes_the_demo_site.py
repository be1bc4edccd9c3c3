"""``powersync ha serve --once`` against a real broker: the demo site's device, entities, state and 5-minute plan
forecasts arrive retained, so a Home Assistant that subscribes later still finds them."""

from __future__ import annotations

import queue

import pytest

from powersync_pipelines.cli import main as cli_main
from powersync_pipelines.config import load_sites
from powersync_pipelines.homeassistant.discovery import BRIDGE_AVAILABILITY, FORECASTS, Topics, site_discovery
from powersync_pipelines.paths import duckdb_path
from powersync_pipelines.storage import HistoryStore

from .broker import WAIT_S, Recorder

NOW = "2024-02-12T20:00:00Z"  # the demo's replay start


def wait_topics(rec: Recorder, topics: set[str]) -> dict:
    """Every topic in ``topics`` seen at least once; the latest message per topic."""
    missing = set(topics)
    while missing:
        try:
            missing.discard(rec.inbox.get(timeout=WAIT_S).topic)
        except queue.Empty:
            raise AssertionError(f"never received {sorted(missing)[:5]} ({len(missing)} topics)") from None
    return rec.latest()


@pytest.fixture
def planned(sites_file, capsys) -> None:
    assert cli_main(["service", "sync_now", "--site-id", "demo", "--sites", sites_file, "--now", NOW]) == 0
    capsys.readouterr()


def test_once_publishes_every_entity_retained_with_state_and_forecasts(broker, sites_file, planned, capsys,
                                                                      monkeypatch):
    monkeypatch.setenv("POWERSYNC_FIXED_NOW", NOW)  # the bridge reads the plan's first slot as "now"
    assert cli_main(["ha", "serve", "--once", "--broker", broker.url, "--sites", sites_file]) == 0
    assert "for 1 site(s)" in capsys.readouterr().out

    site = load_sites(sites_file).get("demo")
    t = Topics("demo")
    configs = {d.topic for d in site_discovery(site)}
    rec = Recorder(broker.port)  # subscribes after the publish: only retained messages can reach it
    try:
        latest = wait_topics(rec, configs | {t.state, t.availability, BRIDGE_AVAILABILITY, t.last_command}
                             | {t.forecast(f.object_id) for f in FORECASTS})
    finally:
        rec.close()
    assert all(m.retain for m in rec.messages)
    assert latest[BRIDGE_AVAILABILITY].payload == b"online" and latest[t.availability].payload == b"online"

    soc_config = latest["homeassistant/sensor/powersync_demo/battery_soc/config"].json()
    assert soc_config["device"]["identifiers"] == ["powersync_demo"]
    assert soc_config["device"]["manufacturer"] == "PowerSync Pipelines"
    assert soc_config["device"]["model"] == "sungrow_sh"

    state = latest[t.state].json()
    store = HistoryStore(duckdb_path())
    meta, intervals = store.read_latest_plan("demo")
    assert state["plan_id"] == meta["plan_id"] == "demo:20240212T2000Z"
    assert state["action"] == "EXPORT" and state["holder"] == "optimizer"
    assert 0 <= state["soc"] <= 100 and state["import_price"] is not None and state["cost_today"] is not None
    assert state["backup_reserve"] == site.battery.backup_reserve_pct and state["force_duration"] == 30
    assert state["spike_status"] in ("none", "potential", "spike") and state["telemetry_at"] is not None
    assert state["battery_power_kw"] is not None and state["grid_power_kw"] is not None

    soc_points = latest[t.forecast("forecast_soc")].json()["forecast"]
    assert len(soc_points) == len(intervals) == 576  # every 5-minute point of the 48 h plan
    assert soc_points[0] == {"datetime": "2024-02-12T20:00:00+00:00",
                             "value": round(float(intervals["soc"].iloc[0]) * 100, 4)}
    prices = latest[t.forecast("forecast_import_price")].json()["forecast"]
    assert [p["value"] for p in prices] == [round(float(x), 4) for x in intervals["import_price"]]


def test_unreachable_broker_is_one_clear_line(sites_file, capsys):
    from .broker import free_port

    rc = cli_main(["ha", "serve", "--once", "--broker", f"mqtt://127.0.0.1:{free_port()}", "--sites", sites_file])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and err.startswith("powersync ha serve: cannot reach the MQTT broker mqtt://127.0.0.1:")
    assert "\n" not in err


def test_password_in_the_broker_url_is_refused(sites_file, capsys, monkeypatch):
    rc = cli_main(["ha", "serve", "--once", "--broker", "mqtt://ha:s3cretpass@127.0.0.1:1883", "--sites", sites_file])
    err = capsys.readouterr().err
    assert rc == 2 and "POWERSYNC_MQTT_PASSWORD" in err and "s3cretpass" not in err
