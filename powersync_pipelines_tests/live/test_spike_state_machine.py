"""The spike watch's decisions, as a pure function of (event, price, thresholds, who holds the battery)."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from powersync_pipelines.config import parse_sites
from powersync_pipelines.control.spike import (
    PRICE_TIMEOUT,
    DispatchPrice,
    SpikeEvent,
    SpikeParams,
    decide,
    spike_params,
)

NOW = pd.Timestamp("2026-01-15T06:00:20Z")
P = SpikeParams(threshold=3000.0, hysteresis=20.0)


def price(rrp: float, at: pd.Timestamp = NOW) -> DispatchPrice:
    return DispatchPrice("SA1", at.floor("5min"), rrp, "PUBLIC_DISPATCHIS_x.zip", at)


def event(status: str = "active", outcome: str | None = "ok", **kw) -> SpikeEvent:
    base = SpikeEvent(event_id="s:SA1:x", site_id="s", region="SA1", battery_kind="sungrow_sh",
                      threshold_per_mwh=3000, hysteresis_per_mwh=20, status=status, response="force_discharge",
                      start_interval=NOW.floor("5min") - pd.Timedelta(minutes=5), start_rrp=5000, start_source="f",
                      seen_at=NOW - pd.Timedelta(minutes=5), peak_rrp=5000, command_outcome=outcome,
                      lease_until=NOW + pd.Timedelta(minutes=28),
                      last_interval=NOW.floor("5min") - pd.Timedelta(minutes=5))
    return replace(base, **kw)


def test_idle_enters_at_the_threshold_inclusive():
    assert decide(None, price(3000.0), P, NOW).kind == "start"
    assert decide(None, price(2999.99), P, NOW).kind == "none"


def test_active_spike_holds_inside_the_hysteresis_band_and_exits_below_it():
    ev = event()
    assert decide(ev, price(4000), P, NOW, "spike").kind == "hold"
    assert decide(ev, price(2980.0), P, NOW, "spike").kind == "hold"  # exactly threshold - hysteresis: stays
    d = decide(ev, price(2979.99), P, NOW, "spike")
    assert d.kind == "restore" and "hysteresis" in d.reason


def test_unverified_start_is_retried_every_tick_while_the_spike_lasts():
    ev = event(status="entering", outcome="error", command_attempts=1)
    assert decide(ev, price(5000), P, NOW, "none").kind == "retry_start"


def test_failed_restore_is_retried_and_a_new_spike_resumes_the_event():
    ev = event(status="restoring", restore_attempts=2)
    assert decide(ev, price(100), P, NOW, "spike").kind == "retry_restore"
    assert decide(ev, None, P, NOW, "spike").kind == "retry_restore"  # no price needed to restore
    assert decide(ev, price(3500), P, NOW, "spike").kind == "resume"


def test_manual_force_mode_outranks_the_spike_watch():
    assert decide(None, price(5000), P, NOW, "manual").kind == "defer"
    deferred = event(status="deferred", response="deferred_to_manual", command_outcome=None)
    assert decide(deferred, price(5000), P, NOW, "manual").kind == "hold"
    assert decide(deferred, price(5000), P, NOW, "none").kind == "take_over"
    assert decide(deferred, price(50), P, NOW, "manual").kind == "end_deferred"
    assert decide(event(), price(5000), P, NOW, "manual").kind == "yield"


def test_spike_outranks_optimizer_and_automations_and_reasserts_when_overwritten():
    assert decide(None, price(5000), P, NOW, "optimizer").kind == "start"
    assert decide(None, price(5000), P, NOW, "automation").kind == "start"
    assert decide(event(), price(5000), P, NOW, "optimizer").kind == "rearm"


def test_lease_is_renewed_before_it_runs_out():
    short = event(lease_until=NOW + pd.Timedelta(minutes=10))
    assert decide(short, price(5000), P, NOW, "spike").kind == "rearm"


def test_missing_price_holds_then_ends_the_spike_conservatively():
    ev = event()
    assert decide(ev, None, P, NOW, "spike").kind == "hold"
    late = NOW + PRICE_TIMEOUT + pd.Timedelta(minutes=6)
    d = decide(ev, None, P, late, "spike")
    assert d.kind == "restore" and "no dispatch price" in d.reason
    # a stale file counts as no price
    old = price(9000, NOW - pd.Timedelta(minutes=40))
    assert decide(None, old, P, NOW).kind == "none"


def _site(kind: str, **spike) -> dict:
    battery = {"kind": kind, "capacity_kwh": 13.5, "max_charge_kw": 5, "max_discharge_kw": 5}
    if kind in ("sungrow_sh", "sigenergy"):
        battery.update(host="127.0.0.1", port=1502)
    return {"id": f"s-{kind}", "timezone": "Australia/Sydney",
            "provider": {"kind": "aemo", "region": "NSW1"}, "battery": battery,
            "features": {"spike_watch": spike}}


@pytest.mark.parametrize(("kind", "spike", "expected"), [
    ("tesla", {}, 300.0),
    ("sungrow_sh", {}, 3000.0),
    ("sigenergy", {}, 3000.0),
    ("sungrow_sh", {"threshold_per_mwh": 1200, "hysteresis_per_mwh": 50}, 1200.0),
])
def test_thresholds_default_by_battery_kind_and_can_be_set_per_site(kind, spike, expected):
    site = parse_sites({"sites": [_site(kind, **spike)]}).sites[0]
    params = spike_params(site)
    assert params is not None and params.threshold == expected
    assert params.exit_below == expected - spike.get("hysteresis_per_mwh", 20)


def test_watch_is_off_when_disabled_or_without_a_nem_region():
    off = parse_sites({"sites": [_site("sungrow_sh", enabled=False)]}).sites[0]
    assert spike_params(off) is None
    uk = _site("tesla")
    uk.update(country="UK", timezone="Europe/London", provider={"kind": "octopus", "gsp": "C", "product": "AGILE"})
    assert spike_params(parse_sites({"sites": [uk]}).sites[0]) is None
