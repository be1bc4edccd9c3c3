"""Enphase IQ Gateway (local HTTPS, bearer token) and Zeversolar (local HTTP): curtail, restore, read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from powersync_pipelines.config import AcInverterConfig
from powersync_pipelines.devices.base import CommandRefused, DeviceRejected, Unsupported
from powersync_pipelines.devices.inverters.enphase import EnphaseGateway
from powersync_pipelines.devices.inverters.zeversolar import Zeversolar, parse_home

from .brand_peers import EnphasePeer, ZeversolarPeer, http_peer, self_signed_tls

TOKEN = "eyJraWQiOiJ0ZXN0In0.owner-token.sig"


def _enphase(port: int, token_env: str = "ENVOY_TOKEN") -> AcInverterConfig:
    return AcInverterConfig(brand="enphase", host="127.0.0.1", port=port, token_env=token_env)


@pytest.fixture
def tls(tmp_path: Path):  # noqa: ANN201
    pytest.importorskip("cryptography", reason="cryptography makes the gateway's self-signed certificate")
    return self_signed_tls(tmp_path)


def test_enphase_dpel_zero_export_over_https_and_restore(tls, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("ENVOY_TOKEN", TOKEN)
    gateway = EnphasePeer(TOKEN)
    with http_peer(gateway, tls) as peer, EnphaseGateway(_enphase(peer.port)) as inv:
        before, after = inv.curtail()
        assert before["dpel"]["enable"] is False and not before["curtailed"]
        assert (
            gateway.settings["enable"]
            and gateway.settings["export_limit"]
            and gateway.settings["limit_value_W"] == 0
        )
        assert gateway.settings["installed_capacity"] == 6600  # firmware keys kept
        assert after["curtailed"]
        inv.restore(inv.settings_of(before))
        assert gateway.settings["enable"] is False
    first, *rest = peer.requests
    assert first.path == "/auth/check_jwt" and first.headers["authorization"] == f"Bearer {TOKEN}"
    assert all("sessionId=s3ss10n-7f" in r.headers.get("cookie", "") for r in rest)
    assert [r.method for r in rest if r.method == "PUT"] == ["PUT", "PUT"]


def test_enphase_bad_token_and_unsupported_firmware(tls, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("ENVOY_TOKEN", "expired")
    with http_peer(EnphasePeer(TOKEN), tls) as peer, EnphaseGateway(_enphase(peer.port)) as inv:
        with pytest.raises(DeviceRejected, match="token in ENVOY_TOKEN is invalid or expired") as err:
            inv.read_state()
        assert "expired" not in str(err.value).replace("invalid or expired", "")  # the secret is never echoed
    monkeypatch.setenv("ENVOY_TOKEN", TOKEN)
    with (
        http_peer(EnphasePeer(TOKEN, dpel_supported=False), tls) as peer,
        EnphaseGateway(_enphase(peer.port)) as inv,
        pytest.raises(Unsupported, match="no DPEL export limit"),
    ):
        inv.curtail()
    monkeypatch.delenv("ENVOY_TOKEN")
    with pytest.raises(CommandRefused, match="ENVOY_TOKEN is empty or unset"):
        EnphaseGateway(_enphase(1)).read_state()


def test_zeversolar_limit_zero_and_restore() -> None:
    device = ZeversolarPeer(limit_pct=90)
    with http_peer(device) as peer:
        cfg = AcInverterConfig(brand="zeversolar", host="127.0.0.1", port=peer.port, rated_kw=5.0)
        with Zeversolar(cfg) as inv:
            before, after = inv.curtail()
            assert before["limit_pct"] == 90 and before["readings"]["pac_w"] == 2808
            assert after["curtailed"] and device.limit_pct == 0 and device.on
            inv.restore(inv.settings_of(before))
            assert device.limit_pct == 90 and device.on
    forms = [r.body.decode() for r in peer.requests if r.path == "/pwrlim.cgi"]
    assert forms[0].startswith("enlim=on&ac_mode=1&ac_value1=0&ac_sys=5000")


def test_zeversolar_minimum_limit_switches_off_and_hang_up_counts_as_sent() -> None:
    device = ZeversolarPeer(min_pct=5, hang_up=True)
    with (
        http_peer(device) as peer,
        Zeversolar(AcInverterConfig(brand="zeversolar", host="127.0.0.1", port=peer.port)) as inv,
    ):
        before, after = inv.curtail()
        assert device.limit_pct == 5 and not device.on  # clamped, so switched off
        assert after["curtailed"] and after["readings"]["pac_w"] == 0.0
        inv.restore(inv.settings_of(before))
        assert device.on and device.limit_pct == 100
    assert [r.path for r in peer.requests if r.method == "POST"] == [
        "/pwrlim.cgi",
        "/inv_ctrl.cgi",
        "/inv_ctrl.cgi",
        "/pwrlim.cgi",
    ]


def test_zeversolar_home_page_parsing_fixes_the_energy_field() -> None:
    text = "1 EAB961234567 KYNQGZJSB4EXVR5T M11 17A31-727R+17829-719R 11:53 28/11/2024 0 1 ZS1501 3120 .35 OK Error"
    home = parse_home(text)
    assert home == {
        "registry_id": "EAB961234567",
        "sw_version": "17A31-727R+17829-719R",
        "inverters": 1,
        "serial": "ZS1501",
        "pac_w": 3120.0,
        "energy_today_kwh": 0.35,
        "status": "OK",
    }
    with pytest.raises(DeviceRejected, match="expected at least 14 fields"):
        parse_home("1 2 3")
