"""curtail_inverter / restore_inverter: original settings saved durably, kept across repeats and restarts."""

from __future__ import annotations

import json
from pathlib import Path

from powersync_pipelines.config import parse_sites
from powersync_pipelines.devices.inverters.control import (
    curtail_inverter,
    inverter_curtailed,
    restore_inverter,
)
from powersync_pipelines.storage import HistoryStore

from .brand_peers import GoodWePeer, SungrowSGPeer


def _site(brand: str, port: int, unit: int):  # noqa: ANN202
    raw = {"id": "ac1", "timezone": "Australia/Adelaide",
           "provider": {"kind": "amber", "site_id": "S", "token_env": "T"},
           "battery": {"kind": "tesla", "token_env": "TESLA_TOKEN", "capacity_kwh": 13.5, "max_charge_kw": 5, "max_discharge_kw": 5},
           "ac_inverter": {"brand": brand, "host": "127.0.0.1", "port": port, "device_id": unit, "rated_kw": 8}}
    return parse_sites({"sites": [raw]}).sites[0]


def test_curtail_twice_then_restore_after_restart_puts_back_the_original(tmp_path: Path) -> None:
    db = tmp_path / "h.duckdb"
    with GoodWePeer(unit=247, enabled=1, watts=3500) as peer:
        site = _site("goodwe", peer.port, 247)
        first = curtail_inverter(site, HistoryStore(db))
        assert first.ok and first.saved == {"export_limit_enabled": True, "export_limit_w": 3500}
        again = curtail_inverter(site, HistoryStore(db))  # already curtailed: the original stays saved
        assert again.ok and again.saved == first.saved
        assert inverter_curtailed(site, HistoryStore(db))
        restored = restore_inverter(site, HistoryStore(db))  # a fresh store object = a restarted process
        assert restored.ok and restored.readback["export_limit_w"] == 3500
        assert peer.holding[247][47509] == 1 and peer.holding[247][47510] == 3500
        assert not inverter_curtailed(site, HistoryStore(db))
    rows = HistoryStore(db).query("SELECT command, outcome, device_kind, written, readback FROM commands ORDER BY issued_at")
    assert list(rows["command"]) == ["curtail_inverter", "curtail_inverter", "restore_inverter"]
    assert set(rows["outcome"]) == {"ok"} and set(rows["device_kind"]) == {"ac_inverter:goodwe"}
    written = json.loads(rows.iloc[0]["written"])
    assert [w["what"] for w in written] == ["grid export limit W (holding 47510)", "grid export limit enabled (holding 47509)"]


def test_restore_without_saved_state_uses_the_no_limit_default(tmp_path: Path) -> None:
    with SungrowSGPeer(limit_enabled=True, ratio=0) as peer:  # someone else left it at 0 %
        site = _site("sungrow_sg", peer.port, 1)
        store = HistoryStore(tmp_path / "h.duckdb")
        res = curtail_inverter(site, store)
        assert res.ok and res.saved == {"running": True, "limit_enabled": False, "limit_pct": 100.0}
        assert restore_inverter(site, store).ok
        assert peer.holding[1][5006] == 0x55 and peer.holding[1][5007] == 1000


def test_unreachable_inverter_is_recorded_and_the_restore_stays_pending(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.duckdb")
    with GoodWePeer(unit=247, enabled=0, watts=6000) as peer:
        site = _site("goodwe", peer.port, 247)
        assert curtail_inverter(site, store).ok
    dead = restore_inverter(site, store)  # the peer is gone
    assert not dead.ok and dead.outcome == "error" and "cannot connect" in dead.error
    assert inverter_curtailed(site, store)
    status = store.query("SELECT status, attempts FROM device_saved_state WHERE slot = 'ac_curtail'")
    assert status.iloc[0]["status"] == "restore_failed" and status.iloc[0]["attempts"] == 1
    no_inverter = _site("goodwe", 1, 247).model_copy(update={"ac_inverter": None})
    refused = curtail_inverter(no_inverter, store)
    assert refused.outcome == "refused" and "no ac_inverter section" in refused.error
