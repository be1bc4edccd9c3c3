"""Sigenergy cloud tariff upload (unofficial mySigen app API; reference/devices.md §2.6, behaviour.md §5.1).

Login: ``POST /auth/oauth/token`` (Basic ``sigen:sigen``, form ``username``, AES-128-CBC/PKCS7 encrypted and
base64 ``password``, ``grant_type=password``); the reply's ``data`` holds ``access_token``, ``refresh_token``,
``expires_in``; accounts that have a 13-digit ``userDeviceId`` send it with the login. The token is refreshed
(``grant_type=refresh_token``) before it expires and after a 401, with a fresh login when the refresh is
refused, and kept between processes in a 0600 credential file. Tariff: ``POST
/device/stationelecsetprice/save``. Passwords and tokens never reach logs or error messages.
"""

from __future__ import annotations

import base64
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from ..redaction import excerpt, redact, register
from .base import DeviceError, DeviceRejected, DeviceUnavailable
from .credentials import CredentialFile, fingerprint

REGIONS = {r: f"https://api-{r}.sigencloud.com" for r in ("aus", "eu", "us", "apac", "cn")}
_BASIC = "Basic " + base64.b64encode(b"sigen:sigen").decode()
_KEY = b"sigensigensigenp"


def encrypt_password(password: str) -> str:
    """AES-128-CBC, PKCS7, key = IV = the app's fixed key, base64 (what the app sends)."""
    try:
        from cryptography.hazmat.primitives import padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    except ImportError as exc:  # a transitive dependency today; see the helper report
        raise DeviceError("Sigenergy cloud login needs the 'cryptography' package") from exc
    padder = padding.PKCS7(128).padder()
    data = padder.update(password.encode()) + padder.finalize()
    enc = Cipher(algorithms.AES(_KEY), modes.CBC(_KEY)).encryptor()
    return base64.b64encode(enc.update(data) + enc.finalize()).decode()


def price_slots(prices_cents: list[tuple[str, str, float]]) -> list[dict[str, Any]]:
    """``[(start "HH:MM", end "HH:MM", c/kWh)]`` → the API's ``timeRange`` list (the last slot may end "24:00")."""
    out = []
    for start, end, cents in prices_cents:
        for label, value in (("start", start), ("end", end)):
            hh, _, mm = value.partition(":")
            if not (hh.isdigit() and mm.isdigit() and (0 <= int(hh) < 24 or value == "24:00") and int(mm) < 60):
                raise ValueError(f"Sigenergy tariff slot {start}-{end}: bad {label} time {value!r}")
        out.append({"timeRange": f"{start}-{end}", "price": round(float(cents), 2)})
    return out


def tariff_body(station_id: int, buy: list[tuple[str, str, float]], sell: list[tuple[str, str, float]],
                provider: str = "PowerSync", plan: str = "PowerSync 30-min") -> dict[str, Any]:
    def static(slots: list[tuple[str, str, float]]) -> dict[str, Any]:
        return {"dynamicPricing": None, "staticPricing": {
            "providerName": provider, "tariffCode": "", "tariffName": "", "currencyCode": "Cent",
            "subAreaName": "", "planName": plan,
            "combinedPrices": [{"monthRange": "01-12",
                                "weekPrices": [{"weekRange": "1-7", "timeRange": price_slots(slots)}]}]}}

    return {"stationId": int(station_id), "priceMode": 1, "buyPrice": static(buy), "sellPrice": static(sell)}


class SigenergyCloud:
    """The app API client. ``device_id`` is the account's 13-digit ``userDeviceId`` (sent with the password
    login where the account has one). ``credentials`` (a ``CredentialFile``) keeps the tokens between
    processes: a new Dagster run reuses the access token, or refreshes it, instead of logging in again with
    the password; refreshes happen under the file's lock after re-reading it, so two processes never spend
    the same single-use refresh token."""

    def __init__(self, base_url: str, username: str, password: str, *, timeout_s: float = 15.0, attempts: int = 3,
                 backoff_base_s: float = 0.5, clock: Callable[[], float] = time.time, device_id: str | None = None,
                 credentials: Any = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._username, self._password, self.device_id = username, password, device_id
        register(password)
        self.attempts, self.backoff_base_s, self.clock = max(1, attempts), backoff_base_s, clock
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s)
        self._access: str | None = None
        self._refresh: str | None = None
        self._expires_at = 0.0
        self.logins = 0
        self.refreshes = 0
        self.credentials = credentials
        self._account = fingerprint(f"{self.base_url}|{username}")
        self._load()

    def __repr__(self) -> str:
        return f"SigenergyCloud({self.base_url!r}, account {self._account})"

    def close(self) -> None:
        self._http.close()

    # -- tokens -----------------------------------------------------------------------------------------
    def _load(self) -> None:
        """Adopt the tokens another process stored for this account (no-op without a credential file)."""
        stored = self.credentials.read() if self.credentials is not None else {}
        if stored.get("account") == self._account and stored.get("access_token"):
            refresh = stored.get("refresh_token")
            self._access, self._refresh = str(stored["access_token"]), refresh if isinstance(refresh, str) else None
            register(self._access, self._refresh)
            self._expires_at = float(stored.get("expires_at") or 0.0)

    @contextmanager
    def _shared(self) -> Iterator[None]:
        if self.credentials is None:
            yield
            return
        with self.credentials.locked():
            self._load()
            yield

    def _valid(self) -> bool:
        return self._access is not None and self.clock() <= self._expires_at - 60  # refresh a minute early

    def _token_request(self, form: dict[str, str]) -> None:
        register(*(form.get(k) for k in ("password", "refresh_token")))
        try:
            r = self._http.post("/auth/oauth/token", data=form, headers={"Authorization": _BASIC})
        except httpx.HTTPError as exc:
            raise DeviceUnavailable(f"Sigenergy cloud {self.base_url}: login: {type(exc).__name__}: "
                                    f"{redact(exc)}") from None
        body = _json(r)
        data = body.get("data") if isinstance(body, dict) else None
        if r.status_code >= 400 or not isinstance(data, dict) or not isinstance(data.get("access_token"), str) \
                or not data["access_token"]:
            msg = _msg(body, "error_description", "error")
            raise DeviceRejected(f"Sigenergy cloud {self.base_url}: login refused (HTTP {r.status_code}: {msg})",
                                 r.status_code)
        refresh = data.get("refresh_token")
        self._access, self._refresh = data["access_token"], refresh if isinstance(refresh, str) else None
        register(self._access, self._refresh)
        self._expires_at = self.clock() + _expires_in(data.get("expires_in"))
        if self.credentials is not None:
            self.credentials.write({"kind": "sigenergy_cloud", "account": self._account, "access_token": self._access,
                                    "refresh_token": self._refresh, "expires_at": self._expires_at,
                                    "refreshed_at": self.clock()})

    def login(self) -> None:
        self.logins += 1
        form = {"username": self._username, "password": encrypt_password(self._password), "grant_type": "password"}
        if self.device_id:
            form["userDeviceId"] = self.device_id
        with self._shared():
            self._token_request(form)

    def refresh(self, rejected: str | None = None) -> None:
        """A new access token (after a 401 on ``rejected``, or near expiry): the one another process stored
        if it is newer, else a refresh, else a fresh password login."""
        with self._shared():
            if self._access is not None and self._access != rejected and self._valid():
                return
            if not self._refresh:
                self.login()
                return
            self.refreshes += 1
            try:
                self._token_request({"grant_type": "refresh_token", "refresh_token": self._refresh})
            except DeviceRejected:
                self.login()

    def renew(self) -> None:
        """Refresh (or log in) now, whatever the expiry (``powersync auth --refresh``)."""
        self.refresh(rejected=self._access)

    def _ensure_token(self) -> str:
        if not self._valid():
            with self._shared():
                if self._access is None:
                    self.login()
                elif not self._valid():
                    self.refresh()
        assert self._access is not None
        return self._access

    # -- requests ---------------------------------------------------------------------------------------
    def request(self, method: str, path: str, json: dict[str, Any] | None = None) -> Any:
        what = f"{method} {path}"
        refreshed = False
        last: Exception | None = None
        for attempt in range(self.attempts + 1):
            token = self._ensure_token()
            try:
                r = self._http.request(method, path, json=json, headers={"Authorization": f"Bearer {token}"})
            except httpx.HTTPError as exc:  # connect error, reset, timeout
                last = DeviceUnavailable(f"Sigenergy cloud {self.base_url}: {what}: {type(exc).__name__}: "
                                         f"{redact(exc)}")
                time.sleep(self._delay(attempt))
                continue
            if r.status_code == 401 and not refreshed:
                refreshed = True
                self.refresh(rejected=token)
                continue
            if r.status_code == 429:
                last = DeviceRejected(f"Sigenergy cloud {what}: rate limited (429)", 429)
                time.sleep(_retry_after(r.headers.get("Retry-After")))
                continue
            if r.status_code >= 500:
                last = DeviceUnavailable(f"Sigenergy cloud {what}: server error {r.status_code}")
                time.sleep(self._delay(attempt))
                continue
            body = _json(r)
            if r.status_code >= 400:
                raise DeviceRejected(f"Sigenergy cloud {what}: HTTP {r.status_code} ({_msg(body)})", r.status_code)
            if isinstance(body, dict) and body.get("code") not in (None, 0, 200, "0", "200"):
                raise DeviceRejected(f"Sigenergy cloud {what}: refused ({_msg(body)})")
            return body.get("data") if isinstance(body, dict) else body
        assert last is not None
        raise last

    def _delay(self, attempt: int) -> float:
        cap = min(10.0, self.backoff_base_s * 2 ** attempt)
        return random.uniform(cap / 2, cap)

    def stations(self) -> list[dict[str, Any]]:
        data = self.request("GET", "/device/station/list")
        return list(data if isinstance(data, list) else (data or {}).get("list", []) or [])

    def station_id(self, configured: str | None = None) -> int:
        if configured is not None:
            if not str(configured).isdigit():
                raise DeviceError(f"Sigenergy station id {configured!r} is not numeric")
            return int(configured)
        found = self.stations()
        if not found:
            raise DeviceError("Sigenergy cloud: the account has no station")
        sid = found[0].get("stationId")
        if not str(sid).isdigit():
            raise DeviceError(f"Sigenergy cloud: station id {sid!r} is not numeric")
        return int(sid)

    def save_tariff(self, station_id: int, buy: list[tuple[str, str, float]], sell: list[tuple[str, str, float]],
                    provider: str = "PowerSync", plan: str = "PowerSync 30-min") -> Any:
        return self.request("POST", "/device/stationelecsetprice/save",
                            tariff_body(station_id, buy, sell, provider, plan))


def _json(r: httpx.Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return {}


def _msg(body: Any, *keys: str) -> str:
    """The server's message, redacted (it may echo what we sent: the password, a token)."""
    if isinstance(body, dict):
        for key in ("msg", "message", *keys, "error"):
            if body.get(key):
                return excerpt(body[key], 200)
    return ""


def _expires_in(value: Any) -> float:
    """Token lifetime in seconds; a missing one is taken as an hour, a nonsensical one is refused."""
    if value is None:
        return 3600.0
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise DeviceRejected(f"Sigenergy cloud login: expires_in {excerpt(value, 40)!r} is not a number") from None
    if not 0 <= seconds < 10 * 365 * 86400:
        raise DeviceRejected(f"Sigenergy cloud login: expires_in {seconds!r} s is out of range")
    return seconds


def _retry_after(value: str | None) -> float:
    try:
        return min(30.0, max(0.0, float(value))) if value else 1.0
    except ValueError:
        return 1.0


def cloud_for_site(site: Any) -> SigenergyCloud:
    """The cloud client a Sigenergy site configures (``battery.cloud_base_url``, ``cloud_username_env``,
    ``cloud_password_env``, ``cloud_device_id``); the login comes from those environment variables, never from
    the sites file, and its tokens are kept in ``$POWERSYNC_HOME/credentials/sigenergy_<account>.json``."""
    b = site.battery
    missing = [f for f in ("cloud_username_env", "cloud_password_env") if not getattr(b, f)]
    if missing:
        raise DeviceError(f"site {site.id!r}: Sigenergy cloud needs battery.{' and battery.'.join(missing)}")
    user, password = os.environ.get(b.cloud_username_env), os.environ.get(b.cloud_password_env)
    unset = [n for n, v in ((b.cloud_username_env, user), (b.cloud_password_env, password)) if not v]
    if unset:
        raise DeviceError(f"site {site.id!r}: environment variable(s) {', '.join(unset)} not set")
    base = (b.cloud_base_url or REGIONS["aus"]).rstrip("/")
    return SigenergyCloud(base, user, password, timeout_s=b.timeout_s, attempts=b.connect_attempts,
                          backoff_base_s=b.backoff_base_s, device_id=b.cloud_device_id,
                          credentials=CredentialFile(f"sigenergy_{fingerprint(f'{base}|{user}', 12)}"))
