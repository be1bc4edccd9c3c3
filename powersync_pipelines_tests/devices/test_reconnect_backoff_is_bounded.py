"""Reconnects against a dead battery are bounded per minute, counted at the peer on a simulated clock (no
timing): one caller in a tight loop, and several device objects for the same endpoint, stay under the bound
that the backoff (jittered exponential, floor half the cap, cap ``backoff_max_s``) promises."""

from __future__ import annotations

import pytest

from powersync_pipelines.devices import DeviceUnavailable
from powersync_pipelines.devices.modbus import ModbusLink

from ..fault_peers import FaultyTcp


class SimClock:
    """Time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)


def bound_per_minute(base: float, cap: float) -> int:
    """Connects that fit in any 60 s window when every wait is at its floor (half the jittered cap)."""
    waits, failures = [], 1
    while sum(waits) < 60:
        waits.append(min(cap, base * 2 ** (failures - 1)) / 2)
        failures += 1
    return len(waits) + 1


def max_in_window(times: list[float], window: float = 60.0) -> int:
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def _hammer(links: list[ModbusLink], clock: SimClock, peer: FaultyTcp, minutes: float) -> list[float]:
    """Call the links round-robin as fast as they return, for ``minutes`` of simulated time; the simulated
    time of every connect the peer accepted."""
    stamps: list[float] = []
    i = 0
    while clock.now() < minutes * 60:
        seen = peer.connects
        with pytest.raises(DeviceUnavailable):
            links[i % len(links)].read_holding(13049, 3)
        stamps += [clock.now()] * (peer.connects - seen)
        i += 1
    return stamps


@pytest.mark.parametrize("callers", [1, 4])
def test_connects_per_minute_against_a_dead_peer_are_bounded(callers):
    clock = SimClock()
    with FaultyTcp() as peer:
        links = [ModbusLink("127.0.0.1", peer.port, 1, timeout_s=0.5, attempts=3, backoff_base_s=0.2,
                            backoff_max_s=10.0, clock=clock.now, sleep=clock.sleep) for _ in range(callers)]
        stamps = _hammer(links, clock, peer, minutes=10)
        for link in links:
            link.close()
    limit = bound_per_minute(0.2, 10.0)
    assert len(stamps) > 10  # it did keep trying
    assert max_in_window(stamps) <= limit, (max_in_window(stamps), limit)
    steady = [t for t in stamps if t >= 120]
    assert max_in_window(steady) <= 60 / 5.0 + 1  # after the ramp: at most one connect per 5 s (cap 10 s)
    assert sum(link.connects for link in links) == len(stamps)  # the link's own count matches the peer's


def test_a_reply_resets_the_backoff(sungrow_sim):
    clock = SimClock()
    with FaultyTcp(upstream=sungrow_sim.port, dies=True) as proxy:
        proxy.dead = True
        link = ModbusLink("127.0.0.1", proxy.port, 1, timeout_s=0.5, attempts=3, backoff_base_s=0.2,
                          clock=clock.now, sleep=clock.sleep)
        for _ in range(4):
            with pytest.raises(DeviceUnavailable):
                link.read_holding(13049, 3)
        assert link._ep.failures >= 8
        proxy.revive()
        assert len(link.read_holding(13049, 3)) == 3
        assert link._ep.failures == 0
        link.close()


def test_the_bound_helper_matches_the_backoff_schedule():
    # floors 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, then 5 s: 6.3 s for the ramp, then ten 5-s waits fit in 60 s
    assert bound_per_minute(0.2, 10.0) == 18
