"""Curtailment acting on real peers: DC via the Sungrow SH simulator, AC via a GoodWe peer, state in DuckDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from powersync_pipelines.config import SiteConfig, parse_sites
from powersync_pipelines.control.context import ControlContext
from powersync_pipelines.control.curtailment import evaluate_curtailment, load_state
from powersync_pipelines.devices.maps import SG
from powersync_pipelines.schemas import finalize_price_frame
from powersync_pipelines.sim.sungrow_sh import SungrowSimulator
from powersync_pipelines.storage import HistoryStore

from ..inverters.brand_peers import GoodWePeer

T0 = pd.Timestamp("2024-10-20T01:00:00Z")  # 11:30 in Adelaide, a spring midday


@pytest.fixture
def sim() -> Iterator[SungrowSimulator]:
    s = SungrowSimulator(port=0, soc=0.6, load_kw=0.5, solar_kw=4.0, time_scale=0.0)
    s.start()
    yield s
    s.stop()


def _site(sim_port: int, ac_port: int) -> SiteConfig:
    raw = {"id": "sa1", "timezone": "Australia/Adelaide", "provider": {"kind": "amber", "site_id": "S", "token_env": "T"},
           "battery": {"kind": "sungrow_sh", "host": "127.0.0.1", "port": sim_port, "device_id": 1, "capacity_kwh": 13.5,
                       "max_charge_kw": 5, "max_discharge_kw": 5},
           "solar": {"peak_kw": 6.6},
           "ac_inverter": {"brand": "goodwe", "host": "127.0.0.1", "port": ac_port, "device_id": 247},
           "features": {"curtailment": {"trigger_c": 0, "release_c": 1, "min_hold_minutes": 10}}}
    return parse_sites({"sites": [raw]}).sites[0]


def _prices(exports: list[float]) -> pd.DataFrame:
    idx = pd.date_range(T0, periods=len(exports), freq="5min", tz="UTC")
    return finalize_price_frame(pd.DataFrame({"import_price": 0.05, "export_price": exports}, index=idx), "t")


def test_negative_export_curtails_dc_and_ac_and_release_restores_both(sim: SungrowSimulator, tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.duckdb")
    sim.set(EXPORT_LIMIT=5000, EXPORT_SWITCH=SG.OFF)
    prices = _prices([0.03, -0.02, 0.005, 0.004, 0.02, 0.03])
    with GoodWePeer(unit=247, enabled=0, watts=5000) as ac:
        site = _site(sim.port, ac.port)
        r0 = evaluate_curtailment(ControlContext(store), site, prices, T0)
        assert not r0.curtailed and not r0.acted
        r1 = evaluate_curtailment(ControlContext(store), site, prices, T0 + pd.Timedelta(minutes=5))
        assert r1.curtailed and r1.acted and r1.applied, (r1.dc, r1.ac)
        assert sim.state["export_switch"] == SG.ON and sim.state["export_limit_w"] == 0
        assert ac.holding[247][47509] == 1 and ac.holding[247][47510] == 0
        r2 = evaluate_curtailment(ControlContext(store), site, prices, T0 + pd.Timedelta(minutes=10))  # 0.5 c: hold
        assert r2.curtailed and not r2.acted
        r3 = evaluate_curtailment(ControlContext(store), site, prices, T0 + pd.Timedelta(minutes=20))  # 2 c, 15 min on
        assert not r3.curtailed and r3.acted and r3.applied
        assert sim.state["export_switch"] == SG.OFF and sim.state["export_limit_w"] == 5000
        assert ac.holding[247][47509] == 0 and ac.holding[247][47510] == 5000
    events = store.query("SELECT curtailed, dc_outcome, ac_outcome FROM curtailment_events ORDER BY ts")
    assert events.values.tolist() == [[True, "ok", "ok"], [False, "ok", "ok"]]


def test_failed_action_is_retried_on_the_next_evaluation(sim: SungrowSimulator, tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.duckdb")
    prices = _prices([-0.05] * 4)
    ac = GoodWePeer(unit=247, enabled=0, watts=5000).start()
    port = ac.port
    ac.stop()  # the inverter is offline at first
    site = _site(sim.port, port)
    first = evaluate_curtailment(ControlContext(store), site, prices, T0)
    assert first.curtailed and first.acted and not first.applied and first.ac["outcome"] == "error"
    assert load_state(store, site.id)[1] is False  # decided, not yet confirmed by the devices
    with GoodWePeer(unit=247, enabled=0, watts=5000) as back:
        site = _site(sim.port, back.port)
        again = evaluate_curtailment(ControlContext(store), site, prices, T0 + pd.Timedelta(minutes=5))
        assert again.acted and again.applied and again.reason.startswith("retrying")
        assert back.holding[247][47509] == 1
