"""Automation rules: validated at load, fired on rising edges with a recorded reason, carried out by a job."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest
import yaml

from powersync_pipelines.config import SiteConfigError, parse_sites
from powersync_pipelines.config.automations import AutomationRule
from powersync_pipelines.control.automations import Facts, RuleMemory, evaluate_rule
from powersync_pipelines.defs.live.jobs import automation_actions_job
from powersync_pipelines.defs.live.sensors import automations as automations_sensor
from powersync_pipelines.defs.resources import (
    BatteryFleetResource,
    ClockResource,
    HistoryStoreResource,
    SitesResource,
)
from powersync_pipelines.devices.maps import SG
from powersync_pipelines.schemas import finalize_price_frame
from powersync_pipelines.storage import HistoryStore

from .conftest import sungrow_site, write_sites

NOW = pd.Timestamp("2026-01-15T03:10:00Z")  # 13:40 in Adelaide (UTC+10:30), a Thursday


def rule(**kw) -> AutomationRule:
    return AutomationRule.model_validate({"id": "r", "then": [{"action": "curtail"}], **kw})


def facts(**kw) -> Facts:
    return Facts(now=kw.pop("now", NOW), tz="Australia/Adelaide", **kw)


# -- the pure engine --------------------------------------------------------------------------------------
def test_fires_on_the_rising_edge_only_and_respects_the_cooldown():
    r = rule(when=[{"kind": "price_below", "price": 0.05}], cooldown_minutes=30)
    first = evaluate_rule(r, facts(import_price=0.02), None)
    assert first.fires and "import price 0.0200 $/kWh < 0.0500" in first.reason
    assert not evaluate_rule(r, facts(import_price=0.02), RuleMemory(True, NOW)).fires  # still true: no refire
    fell = evaluate_rule(r, facts(import_price=0.09), RuleMemory(True, NOW))
    assert fell.condition is False and not fell.fires
    later = NOW + pd.Timedelta(minutes=10)
    assert not evaluate_rule(r, facts(now=later, import_price=0.01), RuleMemory(False, NOW)).fires  # cooldown
    later = NOW + pd.Timedelta(minutes=31)
    assert evaluate_rule(r, facts(now=later, import_price=0.01), RuleMemory(False, NOW)).fires


def test_unknown_facts_neither_fire_nor_count_as_false():
    r = rule(when=[{"kind": "soc_below", "soc_pct": 30}, {"kind": "price_below", "price": 0.1}])
    ev = evaluate_rule(r, facts(import_price=0.05, soc=None), None)
    assert ev.condition is None and not ev.fires and "SOC unknown" in ev.reason
    # a false trigger decides even when another is unknown
    assert evaluate_rule(r, facts(import_price=0.5, soc=None), None).condition is False


def test_time_windows_wrap_midnight_and_belong_to_the_day_they_start():
    night = rule(when=[{"kind": "time_window", "start": "22:00", "end": "06:00", "days": ["fri"]}])
    fri_late = pd.Timestamp("2026-01-16T23:30", tz="Australia/Adelaide").tz_convert("UTC")
    sat_early = pd.Timestamp("2026-01-17T05:00", tz="Australia/Adelaide").tz_convert("UTC")
    sat_late = pd.Timestamp("2026-01-17T23:00", tz="Australia/Adelaide").tz_convert("UTC")
    assert evaluate_rule(night, facts(now=fri_late), None).condition is True
    assert evaluate_rule(night, facts(now=sat_early), None).condition is True  # Friday night, after midnight
    assert evaluate_rule(night, facts(now=sat_late), None).condition is False


def test_spike_triggers_fire_once_per_spike_event():
    r = rule(when=[{"kind": "spike_start"}, {"kind": "soc_above", "soc_pct": 50}])
    ev = evaluate_rule(r, facts(soc=0.8, spike_started=("s:SA1:20260115T0305Z",)), RuleMemory(True, NOW))
    assert ev.fire_keys == ("spike_start@s:SA1:20260115T0305Z",)  # the key makes a re-evaluation idempotent
    assert not evaluate_rule(r, facts(soc=0.8), None).fires


# -- validation at load -----------------------------------------------------------------------------------
def _load(automations, notifications=None):
    site = sungrow_site("sa-home", 1502, "http://127.0.0.1:1", automations=automations)
    if notifications is not None:
        site["notifications"] = notifications
    return parse_sites(yaml.safe_load(yaml.safe_dump({"sites": [site]})), "sites.yaml")


@pytest.mark.parametrize(("automations", "expected"), [
    ([{"id": "a", "when": [{"kind": "price_blow", "price": 0.1}], "then": [{"action": "curtail"}]}],
     "site 'sa-home': automations.0.when.0: Input tag 'price_blow'"),
    ([{"id": "a", "when": [{"kind": "time_window", "start": "25:00", "end": "06:00"}], "then": [{"action": "curtail"}]}],
     "automations.0.when.0.time_window.start"),
    ([{"id": "a", "when": [{"kind": "spike_start"}], "then": [{"action": "force_discharge", "minutes": 600}]}],
     "automations.0.then.0.force_discharge.minutes: Input should be less than or equal to 240"),
    ([{"id": "a", "when": [{"kind": "soc_above", "soc_pct": 90}, {"kind": "soc_below", "soc_pct": 20}],
       "then": [{"action": "curtail"}]}], "soc_above 90.0 and soc_below 20.0 can never both hold"),
    ([{"id": "a", "when": [{"kind": "spike_end"}], "then": [{"action": "curtail"}]},
      {"id": "a", "when": [{"kind": "spike_start"}], "then": [{"action": "restore_curtailment"}]}],
     "duplicate automation id(s): a"),
    ([{"id": "a", "when": [], "then": [{"action": "curtail"}]}], "automations.0.when: List should have at least 1"),
    ([{"id": "a", "when": [{"kind": "spike_end"}], "then": [{"action": "notify", "message": "x", "channels": ["pager"]}]}],
     "notify names unknown channel(s) pager"),
])
def test_invalid_rules_are_rejected_at_load_with_site_and_field(automations, expected):
    with pytest.raises(SiteConfigError) as err:
        _load(automations)
    assert expected in str(err.value)


def test_valid_rules_and_channels_load():
    site = _load([{"id": "cheap-charge", "when": [{"kind": "price_below", "price": 0.05},
                                                  {"kind": "time_window", "start": "10:00", "end": "15:00"}],
                   "then": [{"action": "force_charge", "minutes": 60, "power_kw": 3.5},
                            {"action": "notify", "message": "charging cheaply", "channels": ["phone"]}]}],
                 {"channels": [{"kind": "ntfy", "name": "phone", "url": "http://127.0.0.1:8080", "topic": "ps"}]})
    (s,) = site.sites
    assert s.automations[0].then[0].power_kw == 3.5 and s.notifications.channels[0].name == "phone"


# -- the sensor and the job, against the simulator --------------------------------------------------------
def _store_price(store: HistoryStore, site_id: str, import_price: float, now: pd.Timestamp) -> None:
    idx = pd.date_range(now.floor("5min") - pd.Timedelta(minutes=10), periods=6, freq="5min", tz="UTC")
    df = pd.DataFrame({"import_price": import_price, "export_price": 0.01}, index=idx)
    store.upsert_prices(site_id, finalize_price_frame(df, source="test"))


@pytest.fixture
def auto_site(tmp_path, feed, sim):
    rules = [{"id": "cheap-charge", "when": [{"kind": "price_below", "price": 0.08}],
              "then": [{"action": "force_charge", "minutes": 30, "power_kw": 3.0},
                       {"action": "notify", "message": "Cheap power: charging"}]}]
    path = write_sites(tmp_path / "sites.yaml", [sungrow_site("sa-home", sim.port, feed.base_url, automations=rules)])
    db = tmp_path / "live.duckdb"
    res = {"sites": SitesResource(path=str(path)), "history": HistoryStoreResource(path=str(db)),
           "fleet": BatteryFleetResource(), "clock": ClockResource()}
    return res, HistoryStore(db)


def test_sensor_records_the_firing_with_its_reason_and_the_job_carries_it_out(auto_site, sim):
    res, store = auto_site
    _store_price(store, "sa-home", 0.03, pd.Timestamp.now(tz="UTC"))
    with dg.instance_for_test() as instance:
        r = automations_sensor(dg.build_sensor_context(instance=instance, resources=res))
        (req,) = r.run_requests
        assert req.job_name == "automation_actions_job" and req.run_key.startswith("sa-home:cheap-charge:")
        firing = store.query("SELECT * FROM automation_firings").iloc[0]
        assert firing["status"] == "requested" and "import price 0.0300 $/kWh < 0.0800" in firing["reason"]

        r2 = automations_sensor(dg.build_sensor_context(instance=instance, resources=res))
        assert [q.run_key for q in r2.run_requests] == [req.run_key]  # re-requested until run; same key
        assert len(store.query("SELECT * FROM automation_firings")) == 1

        result = automation_actions_job.execute_in_process(run_config=req.run_config, instance=instance,
                                                           resources=res)
        assert result.success
    st = sim.state
    assert st["ems_mode"] == SG.MODE_FORCED and st["command"] == SG.CMD_CHARGE and st["forced_power_w"] == 3000
    done = store.query("SELECT status, results, lease_until FROM automation_firings").iloc[0]
    assert done["status"] == "ok" and pd.notna(done["lease_until"]) and '"notify"' in done["results"]
    assert store.query("SELECT event FROM notifications")["event"].tolist() == ["automation"]


def test_a_spike_in_progress_outranks_an_automation_force(auto_site, feed, sim):
    res, store = auto_site
    from powersync_pipelines.defs.live.sensors import aemo_spike_watch

    _store_price(store, "sa-home", 0.03, pd.Timestamp.now(tz="UTC"))
    with dg.instance_for_test() as instance:
        feed.publish({"SA1": 5000.0})
        aemo_spike_watch(dg.build_sensor_context(instance=instance, resources=res))
        (req,) = automations_sensor(dg.build_sensor_context(instance=instance, resources=res)).run_requests
        assert automation_actions_job.execute_in_process(run_config=req.run_config, instance=instance,
                                                         resources=res).success
    assert sim.state["command"] == SG.CMD_DISCHARGE  # still serving the spike
    results = store.query("SELECT results FROM automation_firings")["results"].iloc[0]
    assert "force_charge: yielded to spike (force_discharge)" in results and '"skipped"' in results


def test_a_firing_whose_run_never_came_expires_instead_of_acting_late(store):
    from powersync_pipelines.config.automations import SimpleAction
    from powersync_pipelines.control.automations import Firing, pending_firings, record_firing

    now = pd.Timestamp.now(tz="UTC")
    old = Firing("s:r:old", "s", "r", now - pd.Timedelta(minutes=20), "price low", [SimpleAction(action="curtail")])
    fresh = Firing("s:r:new", "s", "r", now - pd.Timedelta(minutes=1), "price low", [SimpleAction(action="curtail")])
    assert record_firing(store, old) and record_firing(store, fresh)
    assert not record_firing(store, fresh)  # recording twice is a no-op
    assert pending_firings(store, "s", now) == [("s:r:new", "r")]
    status = store.query("SELECT firing_id, status FROM automation_firings ORDER BY firing_id")
    assert status.to_dict("records") == [{"firing_id": "s:r:new", "status": "requested"},
                                         {"firing_id": "s:r:old", "status": "expired"}]
