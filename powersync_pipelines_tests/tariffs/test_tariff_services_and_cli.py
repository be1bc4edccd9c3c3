"""Services (sync_tou_schedule against the Tesla simulator, curtail/restore_inverter) and ``powersync tariff``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from powersync_pipelines import cli
from powersync_pipelines.config import AcInverterConfig, BatteryConfig, SiteConfig, load_sites
from powersync_pipelines.control.context import ControlContext
from powersync_pipelines.control.services import ServiceInputError, run_service
from powersync_pipelines.sim.tesla import TeslaSimulator
from powersync_pipelines.storage import HistoryStore
from powersync_pipelines.tariffs.tesla import payload_hash

from ..inverters.brand_peers import HuaweiPeer

REPLAY_NOW = "2024-02-12T20:00:00Z"  # the demo's replay start: every call plans the same slot


def _ctx(store: HistoryStore) -> ControlContext:
    return ControlContext(store)


@pytest.fixture
def tesla() -> Iterator[TeslaSimulator]:
    sim = TeslaSimulator(port=0, token="svc-token", time_scale=0.0)
    sim.start()
    yield sim
    sim.stop()


def _tesla_demo(sim: TeslaSimulator, monkeypatch: pytest.MonkeyPatch) -> SiteConfig:
    monkeypatch.setenv("SVC_TESLA_TOKEN", "svc-token")
    demo = load_sites().get("demo")  # real AEMO replay prices, Melbourne
    battery = BatteryConfig(kind="tesla", base_url=sim.base_url, token_env="SVC_TESLA_TOKEN", capacity_kwh=13.5,
                            max_charge_kw=5, max_discharge_kw=5)
    return demo.model_copy(update={"battery": battery})


def test_sync_tou_schedule_uploads_to_the_powerwall_once(tesla: TeslaSimulator, monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    site = _tesla_demo(tesla, monkeypatch)
    store = HistoryStore(tmp_path / "h.duckdb")
    first = run_service("sync_tou_schedule", site, {"now": REPLAY_NOW}, _ctx(store))
    assert first["ok"] and first["action"] == "upload" and first["sent"], first
    on_device = tesla.settings["tariff_content_v2"]
    assert on_device["code"] == "POWER_SYNC:REPLAY" and len(on_device["energy_charges"]["Summer"]["rates"]) == 48
    assert payload_hash({"tariff_content_v2": on_device}) == first["payload_hash"]
    posts = [r for r in tesla.requests if r[0] == "POST" and "time_of_use_settings" in r[1]]
    second = run_service("sync_tou_schedule", site, {"now": REPLAY_NOW}, _ctx(store))
    assert second["action"] == "skip" and not second["sent"]
    assert len([r for r in tesla.requests if r[0] == "POST" and "time_of_use_settings" in r[1]]) == len(posts) == 1
    forced = run_service("sync_tou_schedule", site, {"now": REPLAY_NOW, "force": True}, _ctx(store))
    assert forced["sent"] and forced["reason"].startswith("forced")


def test_sync_for_a_sungrow_site_stores_a_preview_only(tmp_path: Path) -> None:
    site = load_sites().get("demo")
    out = run_service("sync_tou_schedule", site, {"now": REPLAY_NOW}, _ctx(HistoryStore(tmp_path / "h.duckdb")))
    assert out["action"] == "upload" and not out["sent"] and "not uploaded" in out["note"]
    with pytest.raises(ServiceInputError, match="unknown service 'nope'"):
        run_service("nope", site, {}, _ctx(HistoryStore(tmp_path / "h.duckdb")))


def test_curtail_and_restore_inverter_services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("powersync_pipelines.devices.inverters.huawei.time.sleep", lambda s: None)  # SDongle settle
    with HuaweiPeer(mode=0, limit_w=9000) as peer:
        inverter = AcInverterConfig(brand="huawei", host="127.0.0.1", port=peer.port, device_id=1)
        site = load_sites().get("demo").model_copy(update={"ac_inverter": inverter})
        store = HistoryStore(tmp_path / "h.duckdb")
        cut = run_service("curtail_inverter", site, {}, _ctx(store))
        assert cut["ok"] and cut["saved"] == {"mode": 0, "limit_w": 9000, "limit_pct": 100.0}
        assert peer.holding[1][47415] == 5
        back = run_service("restore_inverter", site, {}, _ctx(store))
        assert back["ok"] and peer.holding[1][47415] == 0


def test_cli_writes_the_demo_payload_and_rejects_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t.json"
    assert cli.main(["tariff", "--site-id", "demo", "--format", "tesla", "--out", str(out)]) == 0
    body = json.loads(out.read_text())["tariff_content_v2"]
    assert {"energy_charges", "seasons", "sell_tariff"} <= body.keys()
    assert len(body["sell_tariff"]["energy_charges"]["Summer"]["rates"]) == 48
    assert cli.main(["tariff", "--site-id", "demo", "--format", "sigenergy", "--out", str(tmp_path / "s.json")]) == 0
    assert len(json.loads((tmp_path / "s.json").read_text())["buyPrice"]["staticPricing"]["combinedPrices"][0]
               ["weekPrices"][0]["timeRange"]) == 48
    capsys.readouterr()
    assert cli.main(["tariff", "--site-id", "missing", "--out", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert "no site with id 'missing'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.json").exists()
    assert cli.main(["tariff", "--site-id", "demo", "--now", "yesterday-ish", "--out", str(tmp_path / "y.json")]) == 2
    assert "--now 'yesterday-ish' is not an ISO timestamp" in capsys.readouterr().err


def test_sync_tou_schedule_uploads_to_the_sigenergy_cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from powersync_pipelines.sim.sigenergy_cloud import SigenergyCloudSimulator

    cloud = SigenergyCloudSimulator(username="owner@example.com", password="s3cret", station_id=202411).start()
    try:
        monkeypatch.setenv("SIGEN_USER", "owner@example.com")
        monkeypatch.setenv("SIGEN_PASS", "s3cret")
        demo = load_sites().get("demo")
        battery = BatteryConfig(kind="sigenergy", host="127.0.0.1", port=1502, capacity_kwh=13.5, max_charge_kw=5,
                                max_discharge_kw=5, cloud_base_url=cloud.base_url, cloud_username_env="SIGEN_USER",
                                cloud_password_env="SIGEN_PASS")
        site = demo.model_copy(update={"battery": battery})
        out = run_service("sync_tou_schedule", site, {"now": REPLAY_NOW}, _ctx(HistoryStore(tmp_path / "h.duckdb")))
        assert out["ok"] and out["sent"] and out["format"] == "sigenergy", out
        (saved,) = cloud.saved
        assert saved["stationId"] == 202411
        assert saved["buyPrice"]["staticPricing"]["combinedPrices"][0]["weekPrices"][0]["timeRange"][-1]["timeRange"] == "23:30-24:00"
    finally:
        cloud.stop()
