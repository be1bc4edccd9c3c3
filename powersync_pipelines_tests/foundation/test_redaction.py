"""The one redaction rule every HTTP client uses: no piece of a secret survives, ordinary messages do."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powersync_pipelines import redaction
from powersync_pipelines.redaction import excerpt, redact, register, safe_url

from ..fault_peers import leaked

SECRET_CHARS = string.ascii_letters + string.digits + "-._~+/=!$%&()[]:;@?#^"
TEXT_CHARS = string.printable


@settings(max_examples=200, deadline=None)
@given(secret=st.text(SECRET_CHARS, min_size=8, max_size=64), before=st.text(TEXT_CHARS, max_size=80),
       after=st.text(TEXT_CHARS, max_size=80), cut=st.integers(8, 64), limit=st.integers(20, 300))
def test_no_eight_character_piece_of_a_secret_survives(secret, before, after, cut, limit):
    """Whether the text holds the whole secret or a cut-off piece, and wherever the excerpt is cut."""
    for text in (before + secret + after, before + secret[:cut] + after, before + secret[-cut:] + after):
        assert leaked(secret, redact(text, [secret])) == []
        assert leaked(secret, excerpt(text, limit, [secret])) == []


@settings(max_examples=100, deadline=None)
@given(text=st.text(TEXT_CHARS, max_size=200))
def test_redaction_is_idempotent(text):
    once = redact(text)
    assert redact(once) == once


@pytest.mark.parametrize("message", [
    "sungrow_sh 127.0.0.1:502 unit 1: write holding 13049=2: no reply after 2 attempt(s): ConnectionResetError: "
    "[Errno 104] Connection reset by peer",
    "Tesla API GET /api/1/energy_sites/42/site_info: token rejected (401: invalid); check the token env var",
    "duration 0 min is outside 15-240 min",
    "SOC 9.5% is at or below the reserve 10%: not discharging",
    "amber: http error: HTTP 400 from https://api.amber.com.au/v1/sites",
])
def test_ordinary_messages_are_left_alone(message):
    assert redact(message) == message


@pytest.mark.parametrize(("text", "kept"), [
    ('{"access_token": "abc.def.ghi", "expires_in": 3600}', '"expires_in": 3600'),
    ("GET /x?api_key=k3y-v4lue&period=1 HTTP/1.1", "period=1"),
    ("refresh_token=r3fr3sh-t0ken&grant_type=refresh_token", "grant_type=refresh_token"),
    ("Authorization: Bearer abcdef123456\nHost: h", "Host: h"),
    ("proxy said Basic c2lnZW46c2lnZW4= was wrong", "was wrong"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl end", " end"),
    ("https://user:pa55word@example.com/path", "example.com/path"),
])
def test_credential_shaped_values_are_masked_without_being_registered(text, kept):
    out = redact(text)
    assert redaction.MASK in out and kept in out
    for secret in ("abc.def.ghi", "k3y-v4lue", "r3fr3sh-t0ken", "abcdef123456", "c2lnZW46c2lnZW4=",
                   "c2lnbmF0dXJl", "pa55word"):
        assert secret not in out


def test_registered_secrets_are_masked_everywhere_in_all_their_forms():
    secret = "p@ss w/rd+\"quoted\"-2024"
    register(secret)
    import json
    from urllib.parse import quote, quote_plus

    for form in (secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]):
        assert form not in redact(f"echo: {form} !")


def test_the_known_secrets_are_bounded(monkeypatch):
    monkeypatch.setattr(redaction, "_known", {})
    for i in range(redaction.MAX_KNOWN + 10):
        register(f"rotating-token-{i:04d}")
    assert len(redaction._known) == redaction.MAX_KNOWN
    assert "rotating-token-0000" not in redaction._known
    assert f"rotating-token-{redaction.MAX_KNOWN + 9:04d}" in redaction._known


def test_safe_url_drops_query_and_user_info():
    assert safe_url("https://me:pw123456@api.example.com/v1/x?token=abc&y=1#frag") == "https://api.example.com/v1/x"
    assert "secret123" not in safe_url("not a url?key=secret123")


def test_excerpt_is_one_line_and_cut_after_redaction():
    text = "line one\nAuthorization: Bearer " + "z" * 300
    out = excerpt(text, 40)
    assert "\n" not in out and "zzzz" not in out and out.startswith("line one Authorization: ***")
