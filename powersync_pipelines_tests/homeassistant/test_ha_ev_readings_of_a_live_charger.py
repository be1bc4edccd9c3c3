"""A site whose charger is not OCPP (here the generic HTTP charger on a local peer) has its EV sensors read from
the charger at each publish: power, current limit and status. A charger that stops answering leaves those
readings empty with the reason, and the site's battery entities are still published."""

from __future__ import annotations

from powersync_pipelines.config.ev import EvConfig
from powersync_pipelines.homeassistant.discovery import site_discovery
from powersync_pipelines.homeassistant.state import snapshot
from powersync_pipelines.sim.inverter_peers import HttpPeer, HttpReply


def test_generic_charger_readings_and_an_unreachable_charger(ctx, demo_site):
    charger = {"enabled": True, "current_a": 16.0, "power_w": 3680}

    def handle(ex):
        if ex.method == "GET" and ex.path == "/status":
            return HttpReply(200, charger)
        return HttpReply(404, {})

    with HttpPeer(handle) as peer:
        ev = EvConfig(charger="generic", host="127.0.0.1", base_url=peer.url, generic={"protocol": "http"},
                      max_amps=20)
        site = demo_site.model_copy(update={"ev": ev})
        entities = site_discovery(site)
        state = snapshot(ctx, site, {"force_duration": 30}, entities).state
        assert (state["ev_power_kw"], state["ev_current_limit_a"]) == (3.68, 16.0)
        assert state["ev_holder"] == "none" and state["ev_mode"] == "cost_optimized"
    state = snapshot(ctx, site, {"force_duration": 30}, entities).state  # the peer is gone
    assert state["ev_charger_status"].startswith("unreachable: ") and state["ev_power_kw"] is None
    assert state["site_id"] == "demo" and "soc" in state and state["optimization"] == "on"
