"""Local peers that behave like each inverter brand on the wire (register tables, validation, HTTP endpoints).

Built from the same documents as the drivers (reference/devices.md §1.10, §4), but written as devices: they
validate values, reject what the device would reject, and change their readings when told to stop producing.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
from pathlib import Path
from urllib.parse import parse_qs

from powersync_pipelines.sim.inverter_peers import HttpExchange, HttpPeer, HttpReply, RegisterPeer


def _string_regs(text: str, n: int) -> list[int]:
    raw = text.encode().ljust(2 * n, b"\0")[: 2 * n]
    return [(raw[i] << 8) | raw[i + 1] for i in range(0, 2 * n, 2)]


# -- Sungrow SG -------------------------------------------------------------------------------------------
class SungrowSGPeer(RegisterPeer):
    """SG-RS/RT holding 5000-5039 and input 4999-5040 (doc − 1); start/stop moves the work state."""

    name = "sungrow-sg-peer"

    def __init__(self, limit_enabled: bool = False, ratio: int = 1000) -> None:
        holding = {a: 0 for a in range(5000, 5040)}
        holding.update({5005: 0xCF, 5006: 0xAA if limit_enabled else 0x55, 5007: ratio})
        inputs = {a: 0 for a in range(4999, 5041)}
        super().__init__({1: (holding, inputs)})

    def on_write(self, unit: int, address: int, values: list[int]) -> int | None:
        for i, v in enumerate(values):
            a = address + i
            if a == 5005 and v not in (0xCF, 0xCE) or a == 5006 and v not in (0xAA, 0x55):
                return 3
            if a == 5007 and not 0 <= v <= 1100:
                return 3
        return None

    def after_write(self, unit: int, address: int, values: list[int]) -> None:
        self.inputs[1][5037] = 0x8000 if self.holding[1][5005] == 0xCE else 0  # stop state / run


# -- Fronius / SunSpec ------------------------------------------------------------------------------------
def sunspec_map(inverter_model: int = 103, control_model: int = 123, pct: int = 10000, enabled: int = 0,
                sf: int = -2) -> tuple[dict[int, int], int]:
    """A Fronius-like SunSpec map at 40000 (SunS, common 1, inverter 103 int+SF or 113 float, controls 123 or
    704, end) and the address of the control model's ID register."""
    regs: dict[int, int] = {}
    addr = 40000
    regs[addr], regs[addr + 1] = 0x5375, 0x6E53
    addr += 2
    common = [1, 66] + _string_regs("Fronius", 16) + _string_regs("Symo GEN24 10.0", 16) + _string_regs("", 8) \
        + _string_regs("1.30.7-1", 8) + _string_regs("34118888", 16) + [1, 0x8000]
    inverter = [inverter_model, 50 if inverter_model == 103 else 60] + [0] * (50 if inverter_model == 103 else 60)
    if control_model == 123:
        ctl = [123, 24] + [0] * 24
        ctl[5], ctl[9], ctl[23] = pct, enabled, sf & 0xFFFF
    else:  # 704: 59 points + 4 groups of 2 = L 65
        ctl = [704, 65] + [0] * 65
        ctl[14], ctl[15], ctl[54] = enabled, pct, sf & 0xFFFF
    control_start = addr + len(common) + len(inverter)
    for block in (common, inverter, ctl, [0xFFFF, 0]):
        for v in block:
            regs[addr] = v & 0xFFFF
            addr += 1
    return regs, control_start


class FroniusPeer(RegisterPeer):
    """Holding registers only; control writes rejected (exception 1) while Modbus control is off."""

    name = "fronius-peer"

    def __init__(self, control_enabled: bool = True, **map_kw: int) -> None:
        self.control_enabled = control_enabled
        regs, self.control_start = sunspec_map(**map_kw)
        super().__init__({1: (regs, regs)}, shared=True)

    def on_write(self, unit: int, address: int, values: list[int]) -> int | None:
        if address < self.control_start:
            return 2  # read-only models
        return None if self.control_enabled else 1


# -- GoodWe -------------------------------------------------------------------------------------------------
class GoodWePeer(RegisterPeer):
    name = "goodwe-peer"

    def __init__(self, unit: int = 247, enabled: int = 0, watts: int = 5000) -> None:
        if unit == 247:
            holding = {a: 0 for a in range(47500, 47520)}
            holding[47509], holding[47510] = enabled, watts
        else:
            holding = {a: 0 for a in range(40320, 40340)}
            holding[40327], holding[40328], holding[40329] = enabled, watts >> 16, watts & 0xFFFF
        super().__init__({unit: (holding, {})})
        self.unit = unit

    def on_write(self, unit: int, address: int, values: list[int]) -> int | None:
        enable = 47509 if unit == 247 else 40327
        if address == enable and values[0] not in (0, 1):
            return 3
        return None


# -- Huawei -------------------------------------------------------------------------------------------------
class HuaweiPeer(RegisterPeer):
    name = "huawei-peer"

    def __init__(self, mode: int = 0, limit_w: int = 8000, pct_x10: int = 1000) -> None:
        holding = {a: 0 for a in range(47410, 47425)}
        holding.update({47415: mode, 47416: (limit_w >> 16) & 0xFFFF, 47417: limit_w & 0xFFFF, 47418: pct_x10})
        super().__init__({1: (holding, {})})

    def on_write(self, unit: int, address: int, values: list[int]) -> int | None:
        if address == 47415 and values[0] not in (0, 1, 5, 6, 7):
            return 3
        return None


# -- Enphase ------------------------------------------------------------------------------------------------
class EnphasePeer:
    """IQ Gateway: /auth/check_jwt sets a session cookie; /ivp/ss/dpel GET/PUT needs bearer or cookie."""

    def __init__(self, token: str, settings: dict | None = None, dpel_supported: bool = True) -> None:
        self.token = token
        self.dpel_supported = dpel_supported
        self.settings = settings or {"enable": False, "export_limit": True, "limit_value_W": 0.0, "slew_rate": 10.0,
                                     "enable_dynamic_limiting": False, "installed_capacity": 6600}
        self.session = "s3ss10n-7f"

    def authorised(self, ex: HttpExchange) -> bool:
        return ex.headers.get("authorization") == f"Bearer {self.token}" or \
            f"sessionId={self.session}" in ex.headers.get("cookie", "")

    def __call__(self, ex: HttpExchange) -> HttpReply:
        if not self.authorised(ex):
            return HttpReply(401, "<html><head><title>401 Authorization Required</title></head></html>")
        if ex.path == "/auth/check_jwt":
            return HttpReply(200, "<!DOCTYPE html><h2>Valid token.</h2>",
                             {"Set-Cookie": f"sessionId={self.session}; Path=/; HttpOnly"})
        if ex.path == "/ivp/ss/dpel":
            if not self.dpel_supported:
                return HttpReply(404, {"err": "404 - Not Found"})
            if ex.method == "GET":
                return HttpReply(200, {"dynamic_pel_settings": self.settings})
            if ex.method == "PUT":
                body = json.loads(ex.body)
                new = body.get("dynamic_pel_settings")
                if not isinstance(new, dict) or not isinstance(new.get("limit_value_W"), int | float):
                    return HttpReply(400, {"message": "bad dynamic_pel_settings"})
                self.settings = new
                return HttpReply(200, {"dynamic_pel_settings": self.settings})
        return HttpReply(404, {"err": "404 - Not Found"})


def self_signed_tls(tmp: Path) -> ssl.SSLContext:
    """A throwaway certificate for 127.0.0.1 (the gateway's is self-signed too)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "envoy.local")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    return ctx


# -- Zeversolar ---------------------------------------------------------------------------------------------
class ZeversolarPeer:
    """home.cgi / adv.cgi text, pwrlim.cgi and inv_ctrl.cgi forms; clamps limits to ``min_pct``; may hang up."""

    def __init__(self, pac_w: float = 3120.0, limit_pct: int = 100, min_pct: int = 0, hang_up: bool = False) -> None:
        self.pac_nominal, self.limit_pct, self.min_pct, self.hang_up = pac_w, limit_pct, min_pct, hang_up
        self.ac_mode, self.on = 1, True
        self.serial = "ZS150060138C0104"

    @property
    def pac(self) -> float:
        return 0.0 if not self.on else round(self.pac_nominal * self.limit_pct / 100.0)

    def __call__(self, ex: HttpExchange) -> HttpReply:
        if ex.method == "GET" and ex.path == "/home.cgi":
            text = (f"1 EAB961234567 KYNQGZJSB4EXVR5T M11 17A31-727R+17829-719R 11:53 28/11/2024 0 1 {self.serial} "
                    f"{self.pac:.0f} .35 OK Error")
            return HttpReply(200, text)
        if ex.method == "GET" and ex.path == "/adv.cgi":
            lines = ["0"] * 16
            lines[10], lines[13] = str(self.limit_pct), str(self.ac_mode)
            return HttpReply(200, "\n".join(lines) + "\n")
        if ex.method == "POST" and ex.path in ("/pwrlim.cgi", "/inv_ctrl.cgi"):
            form = {k: v[0] for k, v in parse_qs(ex.body.decode()).items()}
            if ex.path == "/pwrlim.cgi":
                if form.get("enlim") != "on" or form.get("ac_mode") not in ("1", "2", "3"):
                    return HttpReply(400, "bad form")
                self.ac_mode = int(form["ac_mode"])
                self.limit_pct = max(self.min_pct, min(100, int(form["ac_value1"])))
            else:
                if form.get("sn") != self.serial or form.get("mode") not in ("0", "1"):
                    return HttpReply(400, "bad form")
                self.on = form["mode"] == "0"
            return HttpReply(close_without_reply=True) if self.hang_up else HttpReply(200, "OK")
        return HttpReply(404, "not found")


def http_peer(handler, tls: ssl.SSLContext | None = None) -> HttpPeer:  # noqa: ANN001
    return HttpPeer(handler, tls=tls)
