"""An API that never answers costs one bounded deadline per fetch, not attempts x per-request timeout.

Simulated time: a transport that "hangs" for exactly the timeout httpx was given and a sleep that advances
the same clock, so the budget is proven without waiting for it; then a real silent TCP peer on loopback
shows the cut timeouts reach the socket (nothing here asserts on wall-clock time)."""

from __future__ import annotations

import socket
import threading

import httpx
import pandas as pd
import pytest

from powersync_pipelines.prices.amber import fetch_amber
from powersync_pipelines.prices.errors import PriceDataError
from powersync_pipelines.prices.http import RetryPolicy, make_client, request

from .conftest import make_site


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def hanging_transport(clock: FakeClock, seen: list[float]) -> httpx.MockTransport:
    """Every request hangs until its read timeout, then times out (what a dead API does)."""

    def handler(req: httpx.Request) -> httpx.Response:
        read = req.extensions["timeout"]["read"]
        seen.append(read)
        clock.now += read
        raise httpx.ReadTimeout("no answer", request=req)

    return httpx.MockTransport(handler)


def test_retries_share_one_deadline():
    clock, seen = FakeClock(), []
    client = httpx.Client(transport=hanging_transport(clock, seen), timeout=httpx.Timeout(20.0, connect=5.0))
    policy = RetryPolicy(attempts=3, backoff_s=1.0, sleep=clock.sleep).within(30.0, clock)
    with pytest.raises(PriceDataError) as exc:
        request(client, "amber", "GET", "https://api.example/v1/sites", policy=policy)
    assert exc.value.problem == "timeout" and "30 s deadline was spent" in str(exc.value)
    assert seen == [20.0, 9.0]  # the second attempt gets what is left after 20 s + 1 s backoff
    assert clock.now == pytest.approx(30.0)  # the old behaviour: 20 + 1 + 20 + 2 + 20 = 63 s


def test_without_a_deadline_each_attempt_gets_the_full_timeout():
    clock, seen = FakeClock(), []
    client = httpx.Client(transport=hanging_transport(clock, seen), timeout=20.0)
    with pytest.raises(PriceDataError, match="gave up after 3 attempts"):
        request(client, "amber", "GET", "https://api.example/v1/sites", policy=RetryPolicy(sleep=clock.sleep))
    assert seen == [20.0, 20.0, 20.0]


def test_a_fetch_spends_one_budget_across_its_requests(monkeypatch):
    """fetch_amber asks /sites then /prices: both come out of the site's fetch_deadline_s."""
    clock, seen = FakeClock(), []
    monkeypatch.setenv("AMBER_TOKEN", "secret-token")
    site = make_site("amber", token_env="AMBER_TOKEN", base_url="https://api.example/v1", fetch_deadline_s=12,
                     request_timeout_s=10)
    client = httpx.Client(transport=hanging_transport(clock, seen), timeout=10.0)
    policy = RetryPolicy(attempts=3, backoff_s=1.0, sleep=clock.sleep).within(12.0, clock)
    with pytest.raises(PriceDataError, match="12 s deadline"):
        fetch_amber(site, pd.Timestamp("2025-01-15T00:00:00Z"), client=client, policy=policy)
    assert seen == [10.0, 1.0] and clock.now == pytest.approx(12.0)


def test_fetch_deadline_is_a_site_setting():
    assert make_site("amber", token_env="T").provider.fetch_deadline_s == 30.0
    with pytest.raises(ValueError, match="fetch_deadline_s"):
        make_site("amber", token_env="T", fetch_deadline_s=0)


@pytest.fixture
def silent_peer():
    """A real TCP server on loopback that accepts connections and never says a word."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                accepted.append(conn)
            except OSError:
                continue

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1], accepted
    stop.set()
    t.join()
    for c in accepted:
        c.close()
    srv.close()


def test_silent_real_peer_gives_up_at_the_deadline(silent_peer):
    port, accepted = silent_peer
    client = make_client(timeout_s=120.0)  # without the deadline one attempt alone would hang two minutes
    policy = RetryPolicy(attempts=3, backoff_s=0.05, sleep=lambda s: None).within(0.5)
    with pytest.raises(PriceDataError) as exc:
        request(client, "amber", "GET", f"http://127.0.0.1:{port}/v1/sites", policy=policy)
    client.close()
    assert exc.value.problem == "timeout" and "deadline" in str(exc.value)
    assert 1 <= len(accepted) <= 3
