"""Secrets out of every text that can carry them: error messages, log lines, stored command records.

Why one module: a server can echo what it was sent (an ``Authorization`` header in a 400 body, a token in a
query string, a refresh token in a JSON error), and any client that copies a reply into an error would leak
it into stderr, the ``commands`` table and DAGSTER_HOME. Every HTTP client of the project (price providers,
Tesla, Sigenergy cloud, Enphase, Zeversolar) builds its error text through ``response_excerpt`` / ``redact``
and registers the secrets it holds with ``register``, so one rule applies everywhere.

Redaction is done on the whole text *before* it is shortened, so a truncated echo cannot leave a prefix of
a secret behind. Three layers: the secrets this process holds (registered, plus the request's own
credentials), in raw, URL-encoded and JSON-escaped form, and any word sharing eight characters with one (a
server that echoes a cut-off piece); credential-shaped text (``Bearer x``, ``Basic x``,
``Authorization: x``, ``token=x``, ``"access_token": "x"``, JWTs, ``user:pass@`` in URLs); and URLs shown
without their query string.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

import httpx

MASK = "***"
MIN_SECRET_CHARS = 6  # shorter values would mask ordinary words; real tokens and passwords are longer
FRAGMENT_CHARS = 8  # a run of text sharing this many characters with a secret is a piece of it (a cut echo)

SENSITIVE_KEYS = (
    "access_token", "refresh_token", "id_token", "token", "api_key", "apikey", "api-key", "key", "secret",
    "client_secret", "password", "passwd", "pwd", "authorization", "auth", "signature", "sig", "session",
    "sessionid", "session_id", "code", "jwt", "credential", "credentials",
)
SENSITIVE_HEADERS = ("authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key",
                     "x-auth-token", "x-access-token")

_keys = "|".join(re.escape(k) for k in sorted(SENSITIVE_KEYS, key=len, reverse=True))
_headers = "|".join(re.escape(h) for h in SENSITIVE_HEADERS)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # header lines and header-like pairs: "Authorization: Bearer x", "'authorization': 'Bearer x'"
    (re.compile(rf"(?i)([\"']?(?:{_headers})[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic|digest|token)\s+)?"
                rf"[^\s\"',;}}]+"), rf"\1{MASK}"),
    # JSON members: "access_token": "x"
    (re.compile(rf"(?i)(\"(?:[\w-]*_)?(?:{_keys})\"\s*:\s*\")(?:[^\"\\]|\\.)*"), rf"\1{MASK}"),
    # query and form fields: ?token=x&..., password=x
    (re.compile(rf"(?i)(\b(?:[\w-]*_)?(?:{_keys})=)[^&\s\"'<>]+"), rf"\1{MASK}"),
    # authorization schemes in prose: "Bearer x", "Basic <base64>"
    (re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]{4,}"), rf"\1\2{MASK}"),
    (re.compile(r"\b(Basic)(\s+)(?=[A-Za-z0-9+/]*[0-9+/=])[A-Za-z0-9+/]{6,}={0,2}"), rf"\1\2{MASK}"),
    # JSON web tokens
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), MASK),
    # credentials in URLs: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"), rf"\1{MASK}@"),
)

_RUN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~+/=%-")
MAX_KNOWN = 256  # refreshed tokens replace old ones; an expired token no longer needs masking
_known: dict[str, None] = {}  # insertion-ordered set
_known_lock = threading.Lock()


def register(*secrets: str | None) -> None:
    """Remember secrets this process holds (tokens, passwords) so every later ``redact`` masks them."""
    with _known_lock:
        for s in secrets:
            if s and len(s) >= MIN_SECRET_CHARS:
                _known.pop(s, None)
                _known[s] = None
        while len(_known) > MAX_KNOWN:
            del _known[next(iter(_known))]


def _forms(secret: str) -> set[str]:
    """The ways a secret shows up in text: as is, URL-encoded, JSON-escaped."""
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}


def redact(text: object, extra: Iterable[str | None] = ()) -> str:
    """``text`` with every registered or ``extra`` secret and every credential-shaped value masked."""
    out = str(text)
    with _known_lock:
        secrets = set(_known)
    secrets.update(s for s in extra if s and len(s) >= MIN_SECRET_CHARS)
    for form in sorted({f for s in secrets for f in _forms(s)}, key=len, reverse=True):
        if form in out:
            out = out.replace(form, MASK)
    out = _mask_fragments(out, {s[i:i + FRAGMENT_CHARS] for s in secrets
                                for i in range(len(s) - FRAGMENT_CHARS + 1)})
    for pattern, repl in _PATTERNS:
        out = pattern.sub(repl, out)
    return out


def _mask_fragments(text: str, grams: set[str]) -> str:
    """Mask every stretch of ``text`` that shares ``FRAGMENT_CHARS`` characters with a secret, widened to the
    whole token-like word around it (a cut-off or embedded piece of a secret goes entirely)."""
    if not grams:
        return text
    n = FRAGMENT_CHARS
    spans: list[list[int]] = []
    for i in range(len(text) - n + 1):
        if text[i:i + n] in grams:
            if spans and i <= spans[-1][1]:
                spans[-1][1] = i + n
            else:
                spans.append([i, i + n])
    if not spans:
        return text
    out, pos = [], 0
    for start, end in spans:
        if end <= pos:  # inside the word the previous mask already widened to
            continue
        start = max(start, pos)
        while start > pos and text[start - 1] in _RUN_CHARS:
            start -= 1
        while end < len(text) and text[end] in _RUN_CHARS:
            end += 1
        out.append(text[pos:start])
        out.append(MASK)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def excerpt(text: object, limit: int = 200, extra: Iterable[str | None] = ()) -> str:
    """The first ``limit`` characters of ``text`` after redaction (never cut before redacting), on one line."""
    clean = " ".join(redact(text, extra).split())
    return clean if len(clean) <= limit else clean[:limit] + "…"


def safe_url(url: httpx.URL | str) -> str:
    """The URL without its query string and user info (either can carry keys)."""
    try:
        u = httpx.URL(str(url))
        return redact(str(u.copy_with(query=None, fragment=None, username=None, password=None)))
    except (httpx.InvalidURL, TypeError, ValueError):
        return redact(str(url).split("?", 1)[0])


def request_secrets(request: httpx.Request | None) -> list[str]:
    """The credentials a request carried: header values (with and without their scheme), query values."""
    if request is None:
        return []
    found: list[str] = []
    for name in SENSITIVE_HEADERS:
        value = request.headers.get(name)
        if value:
            found.append(value)
            found.extend(part for part in value.replace(";", " ").replace("=", " ").split()[1:])
    for key, value in request.url.params.multi_items():
        if key.lower() in SENSITIVE_KEYS or any(key.lower().endswith("_" + k) for k in SENSITIVE_KEYS):
            found.append(value)
    return found


def response_excerpt(resp: httpx.Response, limit: int = 200) -> str:
    """A short, redacted piece of a reply body for an error message; the request's own credentials are masked
    even if nobody registered them (an echoing server sends them straight back)."""
    try:
        request = resp.request
    except RuntimeError:  # a Response built without a request (tests, hand-made replies)
        request = None
    try:
        body = resp.text
    except (UnicodeDecodeError, LookupError, httpx.ResponseNotRead):
        body = repr(resp.content[: limit * 4])
    return excerpt(body.strip() or resp.reason_phrase, limit, request_secrets(request))


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's final message (``httpx`` logs every request URL, query string included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


_FILTER = RedactingFilter()


def install_log_filter(names: Iterable[str] = ("httpx", "httpcore")) -> None:
    """Attach the filter to the loggers that format request URLs themselves (idempotent)."""
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


install_log_filter()
