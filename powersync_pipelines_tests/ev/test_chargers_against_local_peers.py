"""Wallbox and Easee cloud, Tesla Wall Connector and the generic charger against local peers that answer with
the vendors' request/response shapes; every command lands in the DuckDB ``commands`` table."""

from __future__ import annotations

import base64
import json
import time

import pytest

from powersync_pipelines import redaction
from powersync_pipelines.config.ev import EvConfig
from powersync_pipelines.ev.chargers import open_charger
from powersync_pipelines.ev.chargers.tesla_wall_connector import vitals_power_kw
from powersync_pipelines.sim.inverter_peers import HttpPeer, HttpReply, RegisterPeer
from powersync_pipelines.storage import HistoryStore

USER, PASSWORD = "owner@example.com", "s3cret-pw"


@pytest.fixture(autouse=True)
def own_secrets(monkeypatch):
    """The redaction registry is process-wide: secrets other tests registered must not mask this test's text,
    and this test's must not mask theirs."""
    monkeypatch.setattr(redaction, "_known", {})


@pytest.fixture
def store(tmp_path):
    return HistoryStore(tmp_path / "ev.duckdb")


@pytest.fixture
def creds(monkeypatch):
    monkeypatch.setenv("EV_USER", USER)
    monkeypatch.setenv("EV_PASSWORD", PASSWORD)


def _commands(store):
    return store.query("SELECT * FROM commands ORDER BY issued_at")


def _no_secret_stored(store):
    dump = _commands(store).to_json()
    assert PASSWORD not in dump and "tok-" not in dump


# -- Wallbox -----------------------------------------------------------------------------------------------
class WallboxCloud:
    """Sign-in, refresh, status, PUT maxChargingCurrent and remote actions, as the Wallbox cloud shapes them."""

    def __init__(self, token_ttl_s: float = 900) -> None:
        self.token_ttl_s = token_ttl_s
        self.tokens: set[str] = set()
        self.refresh_tokens: set[str] = set()
        self.n = 0
        self.status_id, self.limit, self.max_available = 194, 32, 32
        self.fail_next: int | None = None

    def _issue(self):
        self.n += 1
        tok, ref = f"tok-{self.n}", f"ref-{self.n}"
        self.tokens.add(tok)
        self.refresh_tokens.add(ref)
        return HttpReply(200, {"data": {"attributes": {"token": tok, "refresh_token": ref,
                                                       "ttl": int((time.time() + self.token_ttl_s) * 1000),
                                                       "refresh_token_ttl": int((time.time() + 86400) * 1000)}}})

    def __call__(self, ex):
        auth = ex.headers.get("authorization", "")
        if ex.path == "/users/signin":
            good = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            return self._issue() if auth == good and ex.headers.get("partner") == "wallbox" else HttpReply(403, {"error": True})
        if ex.path == "/users/refresh-token":
            return self._issue() if auth.removeprefix("Bearer ") in self.refresh_tokens else HttpReply(401, {})
        if auth.removeprefix("Bearer ") not in self.tokens:
            return HttpReply(401, {"msg": "token expired"})
        if self.fail_next:
            code, self.fail_next = self.fail_next, None
            return HttpReply(code, {}, headers={"Retry-After": "60"})
        if ex.method == "GET" and ex.path == "/chargers/status/4242":
            return HttpReply(200, {"status_id": self.status_id, "charging_power": 7.2 if self.status_id == 194 else 0,
                                   "added_energy": 3.25, "max_available_power": self.max_available,
                                   "config_data": {"max_charging_current": self.limit, "locked": 0}})
        if ex.method == "PUT" and ex.path == "/v2/charger/4242":
            body = json.loads(ex.body)
            a = int(body["maxChargingCurrent"])
            if not 6 <= a <= self.max_available:
                return HttpReply(400, {"error": "out of range"})
            self.limit = a
            return HttpReply(200, {"data": {"chargerData": {"maxChargingCurrent": a}}})
        if ex.method == "POST" and ex.path == "/v3/chargers/4242/remote-action":
            self.status_id = {1: 194, 2: 182}[json.loads(ex.body)["action"]]
            return HttpReply(200, {"id": 4242, "action": 1})
        return HttpReply(404, {})


def _wallbox(peer, store, **kw):
    cfg = EvConfig(charger="wallbox", charger_id="4242", username_env="EV_USER", password_env="EV_PASSWORD",
                   base_url=peer.url, auth_url=peer.url, max_amps=32)
    from powersync_pipelines.ev.chargers.wallbox import Wallbox

    return Wallbox(cfg, "demo", store, status_cache_s=0, **kw)


def test_wallbox_signs_in_reads_status_and_sets_the_limit_with_readback(store, creds):
    cloud = WallboxCloud()
    with HttpPeer(cloud) as peer:
        wb = _wallbox(peer, store)
        st = wb.read_status()
        assert st.charging and st.car_connected and st.power_kw == 7.2 and st.session_energy_kwh == 3.25
        r = wb.set_current_limit(20.7)
        assert r.ok and r.written["amps"] == 20 and r.readback["current_limit_a"] == 20 and cloud.limit == 20
        r = wb.set_current_limit(40)  # never above the charger's max
        assert r.ok and cloud.limit == 32
        r = wb.set_current_limit(3)  # below the minimum: pause, not 3 A
        assert r.ok and cloud.status_id == 182 and cloud.limit == 32
        assert wb.start().ok and cloud.status_id == 194
        signins = [e for e in peer.requests if e.path == "/users/signin"]
        assert len(signins) == 1  # one token for the whole run
    cmds = _commands(store)
    assert list(cmds["device_kind"].unique()) == ["ev_wallbox"]
    assert list(cmds["outcome"]) == ["ok"] * 4
    assert '"maxChargingCurrent": 20' in cmds.iloc[0]["written"]
    _no_secret_stored(store)


def test_wallbox_refreshes_an_expiring_token_and_signs_in_again_when_refresh_fails(store, creds):
    cloud = WallboxCloud(token_ttl_s=30)  # inside the refresh margin: every call refreshes first
    with HttpPeer(cloud) as peer:
        wb = _wallbox(peer, store)
        wb.read_status()
        wb.read_status()
        assert [e.path for e in peer.requests].count("/users/refresh-token") >= 1
        cloud.refresh_tokens.clear()  # the refresh token is no longer valid
        wb.read_status()
        assert [e.path for e in peer.requests].count("/users/signin") == 2
        cloud.tokens.clear()  # revoked early: 401 -> one sign-in, then the call succeeds
        cloud.token_ttl_s = 900
        assert wb.read_status().charging


def test_wallbox_bad_password_rate_limit_and_missing_secret_are_clear_and_recorded(store, creds, monkeypatch):
    cloud = WallboxCloud()
    with HttpPeer(cloud) as peer:
        monkeypatch.setenv("EV_PASSWORD", "wrong")
        r = _wallbox(peer, store).set_current_limit(16)
        assert not r.ok and r.outcome == "error" and "check the e-mail and password" in r.error
        monkeypatch.setenv("EV_PASSWORD", PASSWORD)
        wb = _wallbox(peer, store)
        wb.read_status()
        cloud.fail_next = 429
        r = wb.set_current_limit(16)
        assert not r.ok and "429" in r.error and "retry after 60" in r.error
        monkeypatch.delenv("EV_PASSWORD")
        before = len(peer.requests)
        r = _wallbox(peer, store).set_current_limit(16)
        assert r.outcome == "refused" and "EV_PASSWORD is not set" in r.error and len(peer.requests) == before
    assert list(_commands(store)["outcome"]) == ["error", "error", "refused"]


# -- Easee -------------------------------------------------------------------------------------------------
class EaseeCloud:
    def __init__(self, expires_in: int = 3600) -> None:
        self.expires_in = expires_in
        self.access: set[str] = set()
        self.n = 0
        self.op_mode, self.dynamic = 3, 32.0
        self.apply_async = False

    def _issue(self):
        self.n += 1
        tok = f"tok-{self.n}"
        self.access.add(tok)
        return HttpReply(200, {"accessToken": tok, "expiresIn": self.expires_in, "accessClaims": ["User"],
                               "tokenType": "Bearer", "refreshToken": f"ref-{self.n}"})

    def __call__(self, ex):
        if ex.path == "/api/accounts/login":
            b = json.loads(ex.body)
            return self._issue() if (b.get("userName"), b.get("password")) == (USER, PASSWORD) else HttpReply(400, {"title": "Invalid"})
        if ex.path == "/api/accounts/refresh_token":
            return self._issue() if json.loads(ex.body).get("accessToken") in self.access else HttpReply(401, {})
        if ex.headers.get("authorization", "").removeprefix("Bearer ") not in self.access:
            return HttpReply(401, {})
        if ex.path == "/api/chargers/EH123456/state":
            return HttpReply(200, {"chargerOpMode": self.op_mode, "totalPower": 7.1 if self.op_mode == 3 else 0.0,
                                   "sessionEnergy": 4.2, "dynamicChargerCurrent": self.dynamic, "outputCurrent": self.dynamic,
                                   "reasonForNoCurrent": 0})
        if ex.path == "/api/chargers/EH123456/commands/set_dynamic_charger_current":
            b = json.loads(ex.body)
            assert set(b) == {"amps", "minutes"}
            if not self.apply_async:
                self.dynamic = float(b["amps"])
                self.op_mode = 3 if b["amps"] > 0 else 6
            return HttpReply(202, [{"device": "EH123456", "commandId": 48, "ticks": 638000000000000000}])
        if ex.path == "/api/chargers/EH123456/commands/resume_charging":
            self.op_mode = 3
            return HttpReply(202, [{"device": "EH123456", "commandId": 2}])
        return HttpReply(404, {})


def _easee(peer, store):
    cfg = EvConfig(charger="easee", charger_id="EH123456", username_env="EV_USER", password_env="EV_PASSWORD",
                   base_url=peer.url, max_amps=32)
    return open_charger(cfg, "demo", store)


def test_easee_sets_the_dynamic_current_pauses_with_zero_and_refreshes_tokens(store, creds):
    cloud = EaseeCloud(expires_in=30)  # inside the refresh margin
    with HttpPeer(cloud) as peer:
        ch = _easee(peer, store)
        assert ch.read_status().charging
        r = ch.set_current_limit(16)
        assert r.ok and cloud.dynamic == 16 and r.readback["current_limit_a"] == 16
        assert ch.set_current_limit(0).ok and cloud.dynamic == 0 and not ch.read_status().charging
        assert ch.set_power(5.0).ok and cloud.dynamic == 21  # 5 kW / 230 V = 21.7 A -> 21 A
        paths = [e.path for e in peer.requests]
        assert paths.count("/api/accounts/login") == 1 and paths.count("/api/accounts/refresh_token") >= 1
        cloud.apply_async = True  # 202 and applied later: accepted, read-back noted, not a failure
        r = ch.set_current_limit(10)
        assert r.ok and "202" in r.readback["note"]
    assert set(_commands(store)["device_kind"]) == {"ev_easee"}
    _no_secret_stored(store)


# -- Tesla Wall Connector ----------------------------------------------------------------------------------
VITALS = ('{"contactor_closed":true,"vehicle_connected":true,"session_s":1804,"grid_v":230.1,"grid_hz":50.02,'
          '"vehicle_current_a":31.8,"currentA_a":31.7,"currentB_a":0.1,"currentC_a":0.0,"voltageA_v":229.8,'
          '"voltageB_v":0.0,"voltageC_v":0.0,"session_energy_wh":3521.7,"handle_temp_c":22.1,"evse_state":11,'
          '"current_alerts":[]')  # the closing brace is missing, as some firmware sends it


def test_tesla_wall_connector_reads_vitals_and_refuses_control(store):
    with HttpPeer(lambda ex: HttpReply(200, VITALS) if ex.path == "/api/1/vitals" else HttpReply(404, {})) as peer:
        cfg = EvConfig(charger="tesla_wall_connector", host="127.0.0.1", base_url=peer.url)
        twc = open_charger(cfg, "demo", store)
        st = twc.read_status()
        assert st.car_connected and st.charging and st.session_energy_kwh == pytest.approx(3.5217)
        assert st.power_kw == pytest.approx(229.8 * 31.7 / 1000, abs=1e-3)
        r = twc.set_current_limit(16)
        assert r.outcome == "refused" and "through the vehicle's API" in r.error
        assert [e.method for e in peer.requests] == ["GET"]  # nothing written
    split = {"grid_v": 240, "voltageA_v": 120, "voltageB_v": 120, "voltageC_v": 120, "currentA_a": 10, "currentB_a": 10, "currentC_a": 10}
    assert vitals_power_kw(split) == pytest.approx(2.4)  # split phase: A and B only


# -- generic -----------------------------------------------------------------------------------------------
def test_generic_http_charger_switch_and_amps(store):
    state = {"enabled": True, "current_a": 16.0, "power_w": 3680}

    def handle(ex):
        if ex.method == "GET" and ex.path == "/status":
            return HttpReply(200, state)
        if ex.method == "POST" and ex.path == "/current":
            state["current_a"] = json.loads(ex.body)["current_a"]
            return HttpReply(200, {})
        if ex.method == "POST" and ex.path == "/enable":
            state["enabled"] = json.loads(ex.body)["enabled"]
            return HttpReply(204)
        return HttpReply(404, {})

    with HttpPeer(handle) as peer:
        cfg = EvConfig(charger="generic", host="127.0.0.1", base_url=peer.url, generic={"protocol": "http"}, max_amps=20)
        ch = open_charger(cfg, "demo", store)
        assert ch.set_current_limit(25).ok and state["current_a"] == 20  # the charger's 20 A max
        assert ch.stop().ok and state["enabled"] is False
        assert ch.set_current_limit(8).ok and state == {"enabled": True, "current_a": 8, "power_w": 3680}


def test_generic_modbus_charger_writes_and_reads_back_registers(store):
    # holding 100 = enable, 101 = current x10; input 200 = power W
    with RegisterPeer({1: ({100: 0, 101: 0}, {200: 0})}) as peer:
        cfg = EvConfig(charger="generic", host="127.0.0.1", port=peer.port, device_id=1, max_amps=32,
                       generic={"protocol": "modbus", "enable_register": 100, "current_register": 101,
                                "current_scale": 10, "power_register": 200})
        ch = open_charger(cfg, "demo", store)
        r = ch.set_current_limit(13.9)
        assert r.ok and peer.holding[1][101] == 130 and peer.holding[1][100] == 1 and r.readback["current_limit_a"] == 13
        assert ch.set_current_limit(2).ok and peer.holding[1][100] == 0
        st = ch.read_status()
        assert st.state == "off" and st.current_limit_a == 13
        ch.close()
    assert list(_commands(store)["device_kind"].unique()) == ["ev_generic"]
