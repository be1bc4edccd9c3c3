"""The EV step shares the connection with the house as measured now, and its hysteresis outlives the process.

A generic HTTP charger on a local peer (a car that draws what it is offered) under the arbiter; the site's
telemetry is in a real DuckDB file. The measured house load contains the car's own draw, which the step takes
off; stale telemetry leaves the forecast in charge. A pause decided by one planner process is honoured by the
next one opened on the same file (no resume before ``min_pause_cycles``), where a fresh state would flap.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from powersync_pipelines.config.ev import EvConfig
from powersync_pipelines.control.context import ControlContext
from powersync_pipelines.control.ev import ev_step
from powersync_pipelines.ev.state import save_settings
from powersync_pipelines.sim.inverter_peers import HttpPeer, HttpReply
from powersync_pipelines.storage import HistoryStore
from powersync_pipelines.timegrid import horizon_index

NOW = pd.Timestamp("2024-02-12T20:00:00Z")
VOLTS = 230.0


class CarOnAGenericCharger:
    """``/status``, ``/enable``, ``/current`` as the generic HTTP charger speaks them; the car draws the offer."""

    def __init__(self, amps: float) -> None:
        self.state = {"enabled": amps > 0, "current_a": float(amps), "car_connected": True}
        self.sent: list[float] = []

    def __call__(self, ex):  # noqa: ANN001 - the peer's exchange
        s = self.state
        if ex.method == "GET" and ex.path == "/status":
            return HttpReply(200, {**s, "power_w": s["current_a"] * VOLTS if s["enabled"] else 0.0})
        if ex.method == "POST" and ex.path == "/current":
            s["current_a"] = float(json.loads(ex.body)["current_a"])
            self.sent.append(s["current_a"])
            return HttpReply(200, {})
        if ex.method == "POST" and ex.path == "/enable":
            s["enabled"] = bool(json.loads(ex.body)["enabled"])
            return HttpReply(204)
        return HttpReply(404, {})

    @property
    def drawing_kw(self) -> float:
        return self.state["current_a"] * VOLTS / 1000 if self.state["enabled"] else 0.0


@pytest.fixture
def car():
    peer_state = CarOnAGenericCharger(16)
    with HttpPeer(peer_state) as peer:
        yield peer_state, peer.url


def _site(demo_site, url: str):
    ev = EvConfig(charger="generic", host="127.0.0.1", base_url=url, generic={"protocol": "http"}, max_amps=32,
                  min_amps=6, phases=1, voltage=VOLTS, default_session={"departure": "07:30", "target_kwh": 20})
    return demo_site.model_copy(update={"ev": ev})  # import limit 15 kW


def _cycle(ctx: ControlContext, site, measured_load_kw: float | None, age_minutes: float = 0.0) -> dict:
    """One EV step on flat prices (the battery plan idles), after storing the site's measured load."""
    if measured_load_kw is not None:
        ctx.store.upsert_telemetry(site.id, ctx.clock.wall() - pd.Timedelta(minutes=age_minutes), {"load_kw": measured_load_kw, "solar_kw": 0.0})
    idx = horizon_index(NOW)
    n = len(idx)
    prices = pd.DataFrame({"import_price": np.full(n, 0.30), "export_price": np.full(n, 0.05)}, index=idx)
    flat = pd.Series(np.full(n, 1.0), index=idx)
    return ev_step(ctx, site, NOW, prices, flat * 0.0, flat, 0.5)


def test_the_first_interval_uses_the_measured_house_load_without_the_cars_own_draw(tmp_path, demo_site, car):
    peer, url = car
    site = _site(demo_site, url)
    ctx = ControlContext(HistoryStore(tmp_path / "m.duckdb"))
    save_settings(ctx.store, site.id, "time_critical")
    # 14 kW measured while the car draws 16 A (3.68 kW): the house is 10.32 kW, the connection leaves 4.68 kW
    out = _cycle(ctx, site, 14.0)
    assert out["readings"] == {"source": "telemetry", "load_kw": pytest.approx(10.32), "solar_kw": 0.0,
                               "battery_charge_kw": 0.0}
    assert out["amps"] == 20 and peer.sent[-1] == 20  # floor(4.68 kW / 230 V)
    assert 14.0 - 16 * VOLTS / 1000 + peer.drawing_kw <= 15.0  # the connection holds with the car's new draw


def test_stale_or_missing_telemetry_leaves_the_forecast_in_charge(tmp_path, demo_site, car):
    peer, url = car
    site = _site(demo_site, url)
    ctx = ControlContext(HistoryStore(tmp_path / "f.duckdb"))
    save_settings(ctx.store, site.id, "time_critical")
    out = _cycle(ctx, site, 14.0, age_minutes=30)
    assert out["readings"]["source"] == "forecast" and out["readings"]["load_kw"] == pytest.approx(1.0)
    assert out["amps"] == 32  # the forecast's 1 kW house leaves room for the charger's max


def test_a_restarted_planner_keeps_the_pause_instead_of_flapping(tmp_path, demo_site, car):
    peer, url = car
    site = _site(demo_site, url)
    path = tmp_path / "h.duckdb"
    first = ControlContext(HistoryStore(path))
    save_settings(first.store, site.id, "time_critical")
    # the house takes 14 kW besides the car: 1 kW of room is below one phase's 6 A, the charger is paused
    paused = _cycle(first, site, 14.0 + peer.drawing_kw)
    assert paused["amps"] == 0 and paused["command"]["ok"] and peer.state["enabled"] is False
    stored = first.store.query("SELECT amps, paused_cycles FROM ev_sharing_state")
    assert stored.to_dict("records") == [{"amps": 0, "paused_cycles": 1}]
    del first

    # another process on the same file: the house drops to 10 kW (room for 21 A), but the pause is 1 cycle old
    again = ControlContext(HistoryStore(path))
    seen = [_cycle(again, site, 10.0)["amps"] for _ in range(3)]
    assert seen == [0, 0, 21]  # resumes only on the third paused cycle (min_pause_cycles = 3)
    assert peer.state["enabled"] is True and peer.state["current_a"] == 21


def test_an_old_stored_state_is_not_carried_into_a_new_day(tmp_path, demo_site, car):
    from powersync_pipelines.ev.sharing import SharingState
    from powersync_pipelines.ev.state import load_sharing_state, save_sharing_state

    peer, url = car
    site = _site(demo_site, url)
    store = HistoryStore(tmp_path / "o.duckdb")
    wall = pd.Timestamp.now(tz="UTC")
    save_sharing_state(store, site.id, site.ev, SharingState(0, 1), "paused", wall - pd.Timedelta(hours=2))
    assert load_sharing_state(store, site.id, site.ev, wall) is None  # the cycle starts from the charger
    save_sharing_state(store, site.id, site.ev, SharingState(12, 0), "raised", wall)
    assert load_sharing_state(store, site.id, site.ev, wall) == SharingState(12, 0)
