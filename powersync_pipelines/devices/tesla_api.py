"""Tesla Fleet API / Teslemetry energy-site client (reference/devices.md §3).

Same paths on both clouds; Teslemetry allows 30 calls per 60 s, so a client-side sliding-window limiter waits
instead of collecting 429s. Status codes are handled distinctly: 401 (token rejected: no retry, check the env
var), 408 (gateway offline: retried with backoff), 429 (rate limited: honour Retry-After, then retry), 5xx
(server error: retried with backoff and jitter); other 4xx are reported with the server's message. The bearer
token never appears in logs or error messages.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from ..redaction import excerpt, redact, register, request_secrets, response_excerpt
from .base import DeviceRejected, DeviceUnavailable
from .credentials import fingerprint

log = logging.getLogger(__name__)

FLEET_NA = "https://fleet-api.prd.na.vn.cloud.tesla.com"
TESLEMETRY = "https://api.teslemetry.com"
TESLEMETRY_CALLS_PER_MINUTE = 30


class TeslaAuthError(DeviceRejected):
    """401: the token is missing, invalid or expired."""


class TeslaOffline(DeviceUnavailable):
    """408: the Powerwall gateway did not answer the cloud."""


class TeslaRateLimited(DeviceRejected):
    """429 after the retries."""


class TeslaServerError(DeviceUnavailable):
    """5xx after the retries."""


class RateLimiter:
    """At most ``calls`` per ``period_s`` (sliding window); ``acquire`` sleeps until a slot frees up.

    The slot's time is moved to when the reply arrived (``done``): the server counts a call when it receives
    it, which is after we sent it, so counting from our send time could let call N+1 in a moment too early.
    """

    def __init__(self, calls: int, period_s: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.calls, self.period_s, self.clock, self.sleep = calls, period_s, clock, sleep
        self._stamps: collections.deque[list[float]] = collections.deque()
        self._lock = threading.Lock()
        self.last_wait = 0.0

    def acquire(self) -> float:
        """Take a slot; returns the seconds waited."""
        self.slot()
        return self.last_wait

    def slot(self) -> list[float]:
        """Take a slot; returns its mutable time cell (see ``done``)."""
        waited = 0.0
        while True:
            with self._lock:
                now = self.clock()
                while self._stamps and now - self._stamps[0][0] >= self.period_s:
                    self._stamps.popleft()
                if len(self._stamps) < self.calls:
                    cell = [now]
                    self._stamps.append(cell)
                    self.last_wait = waited
                    return cell
                wait = self._stamps[0][0] + self.period_s - now
            self.sleep(wait)
            waited += wait

    def done(self, cell: list[float]) -> None:
        with self._lock:
            cell[0] = max(cell[0], self.clock())


class TeslaClient:
    def __init__(self, base_url: str, token: str, *, timeout_s: float = 10.0, attempts: int = 3,
                 backoff_base_s: float = 0.5, rate_limit_per_minute: int | None = None,
                 rate_period_s: float = 60.0, max_retry_after_s: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.attempts, self.backoff_base_s, self.max_retry_after_s = max(1, attempts), backoff_base_s, max_retry_after_s
        self.limiter = RateLimiter(rate_limit_per_minute, rate_period_s) if rate_limit_per_minute else None
        register(token)
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s,
                                  headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
        self.calls = 0

    def close(self) -> None:
        self._http.close()

    def _delay(self, attempt: int) -> float:
        cap = min(10.0, self.backoff_base_s * 2 ** attempt)
        return random.uniform(cap / 2, cap)

    def request(self, method: str, path: str, *, json: dict[str, Any] | None = None,
                params: dict[str, Any] | None = None) -> Any:
        """One API call; returns the ``response`` member of the reply."""
        what = f"{method} {path}"
        last: Exception | None = None
        for attempt in range(self.attempts):
            cell = self.limiter.slot() if self.limiter is not None else None
            self.calls += 1
            try:
                r = self._http.request(method, path, json=json, params=params)
            except httpx.HTTPError as exc:  # connect error, reset, timeout: the cloud is unreachable
                last = DeviceUnavailable(f"Tesla API {self.base_url}: {what}: {type(exc).__name__}: {redact(exc)}")
                time.sleep(self._delay(attempt))
                continue
            finally:
                if cell is not None and self.limiter is not None:
                    self.limiter.done(cell)
            status = r.status_code
            if status < 400:
                body = _json_body(r, what)
                return body.get("response", body) if isinstance(body, dict) else body
            detail = _error_text(r)
            if status == 401:
                raise TeslaAuthError(f"Tesla API {what}: token rejected (401: {detail}); check the token env var",
                                     401)
            if status == 408:
                last = TeslaOffline(f"Tesla API {what}: Powerwall gateway offline (408: {detail})")
                time.sleep(self._delay(attempt))
                continue
            if status == 429:
                retry_after = _retry_after(r)
                last = TeslaRateLimited(f"Tesla API {what}: rate limited (429, Retry-After {retry_after:.0f} s)", 429)
                if retry_after > self.max_retry_after_s:
                    raise last
                time.sleep(retry_after)
                continue
            if status >= 500:
                last = TeslaServerError(f"Tesla API {what}: server error {status} ({detail})")
                time.sleep(self._delay(attempt))
                continue
            raise DeviceRejected(f"Tesla API {what}: HTTP {status} ({detail})", status)
        assert last is not None
        raise last

    # -- energy endpoints ---------------------------------------------------------------------------------
    def products(self) -> list[dict[str, Any]]:
        found = _expect(self.request("GET", "/api/1/products") or [], list, "GET /api/1/products")
        return [p for p in found if isinstance(p, dict)]

    def site_info(self, site_id: str) -> dict[str, Any]:
        path = f"/api/1/energy_sites/{site_id}/site_info"
        return _expect(self.request("GET", path), dict, f"GET {path}")

    def live_status(self, site_id: str) -> dict[str, Any]:
        path = f"/api/1/energy_sites/{site_id}/live_status"
        return _expect(self.request("GET", path), dict, f"GET {path}")

    def set_operation(self, site_id: str, mode: str) -> Any:
        return self.request("POST", f"/api/1/energy_sites/{site_id}/operation", json={"default_real_mode": mode})

    def set_backup_reserve(self, site_id: str, pct: int) -> Any:
        return self.request("POST", f"/api/1/energy_sites/{site_id}/backup", json={"backup_reserve_percent": pct})

    def grid_import_export(self, site_id: str, *, export_rule: str | None = None,
                           disallow_grid_charging: bool | None = None) -> Any:
        body: dict[str, Any] = {}
        if export_rule is not None:
            body["customer_preferred_export_rule"] = export_rule
        if disallow_grid_charging is not None:
            body["disallow_charge_from_grid_with_solar_installed"] = disallow_grid_charging
        return self.request("POST", f"/api/1/energy_sites/{site_id}/grid_import_export", json=body)

    def time_of_use_settings(self, site_id: str, tariff_content_v2: dict[str, Any]) -> Any:
        return self.request("POST", f"/api/1/energy_sites/{site_id}/time_of_use_settings",
                            json={"tou_settings": {"tariff_content_v2": tariff_content_v2}})

    def calendar_history(self, site_id: str, *, kind: str = "energy", period: str = "day",
                         start_date: str | None = None, end_date: str | None = None,
                         time_zone: str | None = None) -> dict[str, Any]:
        params = {k: v for k, v in {"kind": kind, "period": period, "start_date": start_date,
                                    "end_date": end_date, "time_zone": time_zone}.items() if v is not None}
        path = f"/api/1/energy_sites/{site_id}/calendar_history"
        return _expect(self.request("GET", path, params=params), dict, f"GET {path}")


def _expect(value: Any, kind: type, what: str) -> Any:
    """The reply's ``response`` member has the shape the endpoint documents, or the call is refused clearly."""
    if not isinstance(value, kind):
        raise DeviceRejected(f"Tesla API {what}: expected a JSON {kind.__name__} in 'response', "
                             f"got {type(value).__name__}: {excerpt(value, 120)!r}")
    return value


def _json_body(r: httpx.Response, what: str) -> Any:
    """A success reply's JSON (an empty body is ``{}``); anything else is the device's error, not a crash."""
    if not r.content:
        return {}
    try:
        return r.json()
    except ValueError:
        raise DeviceRejected(f"Tesla API {what}: HTTP {r.status_code} reply is not JSON: "
                             f"{response_excerpt(r, 120)!r}", r.status_code) from None


def _error_text(r: httpx.Response) -> str:
    """The server's error message, redacted: an echoing server may send our own token back."""
    try:
        body = r.json()
    except ValueError:
        return response_excerpt(r)
    if isinstance(body, dict):
        body = body.get("error_description") or body.get("error") or body
    return excerpt(body, 200, request_secrets(r.request))


def _retry_after(r: httpx.Response) -> float:
    for header in ("Retry-After", "RateLimit-Reset"):
        value = r.headers.get(header)
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                continue
    return 1.0


# -- Fleet API OAuth: log-ins that stay logged in --------------------------------------------------------------
# Third-party tokens (developer.tesla.com, "Third-Party Tokens"): an access token lives 8 h (``expires_in``
# 28800); ``POST {token_url}`` with ``grant_type=refresh_token``, ``client_id`` and ``refresh_token`` returns a
# new access token *and a new refresh token*; the old refresh token is then spent (single use, 3 months).
# So the rotated refresh token is written to the credential file before the new access token is used, and a
# refresh happens under the file's cross-process lock, after re-reading it: a process whose token was already
# rotated by another one takes the stored token instead of spending a dead one. Teslemetry tokens do not
# rotate: a Teslemetry site keeps the plain ``TeslaClient``.

FLEET_AUTH_TOKEN_URL = "https://fleet-auth.prd.vn.cloud.tesla.com/oauth2/v3/token"
AUTH_URL_ENV = "POWERSYNC_TESLA_AUTH_URL"
REFRESH_MARGIN_S = 300.0  # refresh this long before the access token expires
DEFAULT_EXPIRES_IN_S = 28800.0


def _jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT access token (read, not verified: it only schedules the refresh)."""
    import base64
    import json as _json

    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = _json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, TypeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) else None


class TeslaOAuth:
    """The Fleet API access token of one account, refreshed before it expires and after a 401.

    ``seed_refresh_token`` is the refresh token the owner put in the environment. Once it has been used, the
    credential file holds the current (rotated) one; a *different* seed (the owner re-authorised) wins over the
    file. No token ever reaches a log line, an exception message or ``repr``.
    """

    def __init__(self, client_id: str, seed_refresh_token: str, credentials: Any, *,
                 token_url: str = FLEET_AUTH_TOKEN_URL, access_token: str | None = None, timeout_s: float = 10.0,
                 clock: Callable[[], float] = time.time, seed_name: str = "the refresh token variable") -> None:

        self.client_id, self.token_url, self.clock = client_id, token_url, clock
        self.credentials, self.seed_name = credentials, seed_name
        self._seed_fp = fingerprint(seed_refresh_token)
        self._refresh_token = seed_refresh_token
        register(seed_refresh_token, access_token)  # masked in every error text and log line from here on
        self._http = httpx.Client(timeout=timeout_s)
        self._access: str | None = access_token
        self._expires_at: float | None = _jwt_expiry(access_token) if access_token else None
        self.refreshes = 0
        with credentials.locked():
            self._adopt(credentials.read())

    def __repr__(self) -> str:
        return f"TeslaOAuth(client_id={self.client_id!r}, token_url={self.token_url!r}, file={self.credentials!r})"

    def close(self) -> None:
        self._http.close()

    def _adopt(self, stored: dict[str, Any]) -> bool:
        """Take the stored tokens if they descend from the current seed; True when they were taken."""
        if stored.get("seed_fp") != self._seed_fp or not stored.get("refresh_token"):
            return False
        self._refresh_token = str(stored["refresh_token"])
        register(self._refresh_token)
        if stored.get("access_token"):
            self._access = str(stored["access_token"])
            register(self._access)
            self._expires_at = float(stored.get("expires_at") or 0.0)
        return True

    def _valid(self) -> bool:
        if self._access is None:
            return False
        return self._expires_at is None or self.clock() < self._expires_at - REFRESH_MARGIN_S

    def access_token(self) -> str:
        """A token good for at least ``REFRESH_MARGIN_S`` more seconds (refreshing first if needed)."""
        if self._valid():
            assert self._access is not None
            return self._access
        with self.credentials.locked():
            self._adopt(self.credentials.read())  # another process may have refreshed already
            if not self._valid():
                self._refresh_locked()
        assert self._access is not None
        return self._access

    def refresh(self, rejected: str | None = None) -> str:
        """A new access token after the API refused ``rejected`` (401): the stored one if another process has
        refreshed since, else a refresh."""
        with self.credentials.locked():
            self._adopt(self.credentials.read())
            if self._access is None or self._access == rejected or not self._valid():
                self._refresh_locked()
        assert self._access is not None
        return self._access

    def renew(self) -> str:
        """Refresh now, whatever the expiry (``powersync auth --refresh``: proves the chain, rotates it)."""
        return self.refresh(rejected=self._access)

    def status(self) -> dict[str, Any]:
        """What the log-in looks like, without any token: for ``powersync auth``."""
        stored = self.credentials.read()
        return {"client_id": self.client_id, "token_url": self.token_url, "credential_file": str(self.credentials.path),
                "stored": bool(stored.get("refresh_token")) and stored.get("seed_fp") == self._seed_fp,
                "access_expires_at": stored.get("expires_at"), "refreshed_at": stored.get("refreshed_at"),
                "rotations": stored.get("rotations", 0)}

    def _refresh_locked(self) -> None:
        form = {"grant_type": "refresh_token", "client_id": self.client_id, "refresh_token": self._refresh_token}
        try:
            r = self._http.post(self.token_url, data=form, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise DeviceUnavailable(f"Tesla auth {self.token_url}: {type(exc).__name__} refreshing the access token") from None
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.status_code >= 500 or r.status_code == 429:
            raise DeviceUnavailable(f"Tesla auth {self.token_url}: HTTP {r.status_code} refreshing the access token")
        if r.status_code >= 400 or not isinstance(body, dict):
            err = body.get("error") if isinstance(body, dict) else None
            raise TeslaAuthError(
                f"Tesla auth {self.token_url}: refresh refused (HTTP {r.status_code}: {excerpt(err or 'no JSON', 120)}); "
                f"re-authorise the app and put the new refresh token in {self.seed_name}", 401)
        access, rotated = body.get("access_token"), body.get("refresh_token")
        expires_in = body.get("expires_in", DEFAULT_EXPIRES_IN_S)
        if not isinstance(access, str) or not access or (rotated is not None and not isinstance(rotated, str)) \
                or not isinstance(expires_in, int | float) or expires_in <= 0:
            raise DeviceRejected(f"Tesla auth {self.token_url}: token reply without a usable access_token / "
                                 f"expires_in (keys: {sorted(body)})")
        register(access, rotated)
        now = self.clock()
        previous = self.credentials.read()
        rotations = int(previous.get("rotations", 0)) + 1 if previous.get("seed_fp") == self._seed_fp else 1
        self.credentials.write({
            "kind": "tesla_fleet_oauth", "client_id": self.client_id, "seed_fp": self._seed_fp,
            "refresh_token": rotated or self._refresh_token, "access_token": access,
            "expires_at": now + float(expires_in), "refreshed_at": now, "rotations": rotations,
        })
        self._refresh_token = rotated or self._refresh_token
        self._access, self._expires_at = access, now + float(expires_in)
        self.refreshes += 1
        log.info("Tesla access token refreshed (valid %.0f min)", float(expires_in) / 60)


class FleetOAuthClient(TeslaClient):
    """``TeslaClient`` whose bearer token comes from ``TeslaOAuth``: fresh before each call, and a 401 gets
    exactly one refresh and one retry (a second 401 is reported, never looped on)."""

    def __init__(self, base_url: str, oauth: TeslaOAuth, **kwargs: Any) -> None:
        super().__init__(base_url, "", **kwargs)
        self.oauth = oauth
        self.auth_retries = 0

    def close(self) -> None:
        super().close()
        self.oauth.close()

    def _bearer(self, token: str) -> None:
        self._http.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, *, json: dict[str, Any] | None = None,
                params: dict[str, Any] | None = None) -> Any:
        token = self.oauth.access_token()
        self._bearer(token)
        try:
            return super().request(method, path, json=json, params=params)
        except TeslaAuthError:
            self._bearer(self.oauth.refresh(rejected=token))
            self.auth_retries += 1
            return super().request(method, path, json=json, params=params)
