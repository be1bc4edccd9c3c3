"""The one way price providers talk HTTP: timeouts, retries with backoff, and errors a human can act on.

Why one module: every provider needs the same things (retry 429/5xx honouring ``Retry-After``, a clear
"token invalid" on 401, a clear error when a captive portal or CDN hands back an HTML page instead of JSON)
and the same rule that a token never reaches a log line or an exception message.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from ..redaction import redact, register, response_excerpt, safe_url
from .errors import PriceDataError

log = logging.getLogger(__name__)

DEFAULT_BASE_URLS = {
    "amber": "https://api.amber.com.au/v1",
    "aemo": "https://nemweb.com.au",
    "octopus": "https://api.octopus.energy/v1",
}
BASE_URL_ENV = {
    "amber": "POWERSYNC_AMBER_BASE_URL",
    "aemo": "POWERSYNC_AEMO_BASE_URL",
    "octopus": "POWERSYNC_OCTOPUS_BASE_URL",
}
# NEMWEB answers 403 to clients without a browser-like User-Agent (reference/nemweb.md §1.3).
USER_AGENT = "Mozilla/5.0 (compatible; powersync-pipelines/0.1; +https://github.com/)"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def base_url(provider: str, configured: str | None = None) -> str:
    """Site field ``base_url`` beats ``$POWERSYNC_<PROVIDER>_BASE_URL`` beats the public endpoint."""
    env = os.environ.get(BASE_URL_ENV.get(provider, ""), "")
    chosen = configured or env or DEFAULT_BASE_URLS[provider]
    return chosen.rstrip("/")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. ``sleep`` is injectable so tests prove the backoff without waiting for it."""

    attempts: int = 3
    backoff_s: float = 1.0
    max_delay_s: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def delay(self, attempt: int, retry_after: str | None) -> float:
        """Seconds before the next attempt: ``Retry-After`` when given (clamped), else exponential."""
        if retry_after:
            parsed = _parse_retry_after(retry_after)
            if parsed is not None:
                return min(max(parsed, 0.0), self.max_delay_s)
        return min(self.backoff_s * (2**attempt), self.max_delay_s)


def _parse_retry_after(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()


def make_client(timeout_s: float = 20.0, connect_timeout_s: float = 5.0,
                headers: Mapping[str, str] | None = None) -> httpx.Client:
    """An httpx client with explicit timeouts and our User-Agent; the caller closes it."""
    return httpx.Client(
        timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
        headers={"User-Agent": USER_AGENT, **(headers or {})},
        follow_redirects=True,
    )


def _redact(url: httpx.URL | str) -> str:
    """The URL without its query string (query strings can carry keys on some APIs)."""
    return safe_url(url)


def request(client: httpx.Client, provider: str, method: str, url: str, *,
            params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None,
            policy: RetryPolicy | None = None) -> httpx.Response:
    """One request with retries on 429/5xx and transport errors; raises ``PriceDataError`` otherwise."""
    policy = policy or RetryPolicy()
    last, problem = "", "unreachable"
    attempts = max(1, policy.attempts)
    for attempt in range(attempts):
        try:
            resp = client.request(method, url, params=params, headers=headers)
        except httpx.TimeoutException as exc:
            last = f"timed out ({type(exc).__name__}) calling {_redact(url)}"
            problem = "timeout"
            retry_after = None
        except httpx.TransportError as exc:
            last = f"cannot reach {_redact(url)}: {type(exc).__name__}: {redact(exc)}"
            problem = "unreachable"
            retry_after = None
        else:
            if resp.status_code in (401, 403):
                what = "token invalid or expired" if resp.status_code == 401 else "access forbidden"
                raise PriceDataError(provider, "token_invalid" if resp.status_code == 401 else "forbidden",
                                     f"HTTP {resp.status_code} from {_redact(resp.url)} ({what})")
            if resp.status_code == 404:
                raise PriceDataError(provider, "not_found", f"HTTP 404 from {_redact(resp.url)}")
            if resp.status_code not in RETRY_STATUSES and resp.status_code < 400:
                return resp
            if resp.status_code not in RETRY_STATUSES:
                raise PriceDataError(provider, "http_error",
                                     f"HTTP {resp.status_code} from {_redact(resp.url)}: {response_excerpt(resp)!r}")
            problem = "rate_limited" if resp.status_code == 429 else "server_error"
            last = f"HTTP {resp.status_code} from {_redact(resp.url)}"
            retry_after = resp.headers.get("Retry-After")
        if attempt + 1 < attempts:
            wait = policy.delay(attempt, retry_after)
            log.warning("%s: %s; retry %d/%d in %.1f s", provider, last, attempt + 1, attempts - 1, wait)
            policy.sleep(wait)
    raise PriceDataError(provider, problem, f"{last} (gave up after {attempts} attempts)")


def looks_like_html(body: bytes | str) -> bool:
    head = (body[:512].decode("utf-8", "replace") if isinstance(body, bytes) else body[:512]).lstrip().lower()
    return head.startswith(("<!doctype html", "<html", "<head", "<body")) or "<html" in head[:200]


def parse_json(resp: httpx.Response, provider: str) -> Any:
    """The body as JSON, or a clear error when it is an HTML page or not JSON at all."""
    return parse_json_bytes(resp.content, provider, str(_redact(resp.url)),
                            resp.headers.get("content-type", ""))


def parse_json_bytes(body: bytes, provider: str, where: str, content_type: str = "") -> Any:
    if looks_like_html(body) or "text/html" in content_type:
        raise PriceDataError(provider, "html_instead_of_json",
                             f"{where} returned an HTML page (a login, captive portal or error page?)")
    if not body.strip():
        raise PriceDataError(provider, "empty_body", f"{where} returned an empty body")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise PriceDataError(provider, "malformed_json", f"{where}: {exc}") from None


def get_json(client: httpx.Client, provider: str, url: str, *, params: Mapping[str, Any] | None = None,
             headers: Mapping[str, str] | None = None, policy: RetryPolicy | None = None) -> Any:
    return parse_json(request(client, provider, "GET", url, params=params, headers=headers, policy=policy), provider)


def bearer(token_env: str | None, provider: str) -> dict[str, str]:
    """``Authorization`` header from the env var the site names. The token itself is never logged."""
    if not token_env:
        raise PriceDataError(provider, "token_missing", "the site's provider section has no 'token_env'")
    token = os.environ.get(token_env, "").strip()
    if not token:
        raise PriceDataError(provider, "token_missing", f"environment variable {token_env} is not set")
    register(token)
    return {"Authorization": f"Bearer {token}"}
