"""An explicit zero is never read as "not given": a 0 kW force or a 0-minute lease is refused with a reason
and nothing is written; None alone means the rated power; a zero rate or export limit writes zero
(issue 31 item 4). Non-numbers (NaN, infinity, booleans, text) are refused the same way."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powersync_pipelines.devices import open_device
from powersync_pipelines.devices.maps import SG

from .conftest import make_site


def test_force_discharge_at_zero_kw_is_refused_and_writes_nothing(sungrow_sim, sungrow_site, store):
    with open_device(sungrow_site, store) as dev:
        result = dev.force_discharge(30, 0.0)
    assert result.outcome == "refused" and "0 kW" in result.error
    assert sungrow_sim.written_addresses(accepted_only=False) == []
    assert sungrow_sim.state["forced_power_w"] == 0
    row = store.query("SELECT outcome, params FROM commands").iloc[0]
    assert row["outcome"] == "refused" and '"power_kw": 0.0' in row["params"]


def test_zero_minute_lease_is_refused_not_turned_into_the_default(sungrow_sim, sungrow_site, store):
    with open_device(sungrow_site, store) as dev:
        result = dev.force_charge(0, 2.0)
    assert result.outcome == "refused" and "duration 0 min" in result.error
    assert sungrow_sim.written_addresses(accepted_only=False) == []
    assert store.query("SELECT COUNT(*) AS n FROM device_saved_state")["n"].iloc[0] == 0


def test_no_power_means_the_rated_power_and_the_record_says_so(sungrow_sim, sungrow_site, store):
    with open_device(sungrow_site, store) as dev:
        result = dev.force_discharge(30)
    assert result.ok, result.error
    assert sungrow_sim.state["forced_power_w"] == 5000
    assert result.params["power_kw"] is None and result.params["applied_kw"] == 5.0


def test_zero_rate_and_zero_export_limit_write_zero(sungrow_sim, sungrow_site):
    with open_device(sungrow_site) as dev:
        assert dev.set_charge_rate(0).ok
        assert dev.set_export_limit(0).ok
    h = sungrow_sim.state["holding"]
    assert h[SG.MAX_CHARGE_POWER] == 0
    assert (h[SG.EXPORT_LIMIT], h[SG.EXPORT_SWITCH]) == (0, SG.ON)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, True, "3"])
def test_non_numbers_are_refused_before_any_write(sungrow_sim, sungrow_site, bad):
    with open_device(sungrow_site) as dev:
        results = [dev.apply("CHARGE", bad), dev.set_charge_rate(bad), dev.set_export_limit(bad),
                   dev.set_backup_reserve(bad), dev.force_charge(bad, 2.0), dev.force_charge(30, bad)]
    assert [r.outcome for r in results] == ["refused"] * len(results), [r.error for r in results]
    assert sungrow_sim.written_addresses(accepted_only=False) == []


def test_none_means_not_given_the_default_lease_and_the_rated_power(sungrow_sim, sungrow_site):
    with open_device(sungrow_site) as dev:
        result = dev.force_charge(None, None)
    assert result.ok, result.error
    assert sungrow_sim.state["forced_power_w"] == 5000 and result.params["applied_minutes"] == 30


def test_fractional_minutes_are_refused_and_whole_floats_accepted(sungrow_sim, sungrow_site):
    with open_device(sungrow_site) as dev:
        assert dev.force_charge(20.5, 2.0).outcome == "refused"
        assert dev.force_charge(20.0, 2.0).ok


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(power=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=32),
                       st.integers(-10, 50), st.just(0), st.just(-0.0)),
       minutes=st.one_of(st.integers(-5, 300), st.floats(allow_nan=True, width=16)),
       direction=st.sampled_from(["charge", "discharge"]))
def test_a_forced_mode_writes_exactly_what_was_asked_or_nothing(power, minutes, direction):
    """Invariant: the device gets the requested power (clamped to the rating) or the rating when none was
    given; never more, never a substitute for an explicit zero; a refusal leaves it untouched."""
    site = make_site({"kind": "simulated", "initial_soc_pct": 60}, site_id=f"zero-{direction}")
    with open_device(site) as dev:
        dev.restore_normal()
        before = (dev.model.mode, dev.model.command_kw)
        fn = dev.force_charge if direction == "charge" else dev.force_discharge
        result = fn(minutes, power)
        rated = 5.0
        if result.ok:
            assert power is None or (isinstance(power, (int, float)) and power > 0)
            assert dev.model.mode == direction
            want = rated if power is None else min(float(power), rated)
            assert dev.model.command_kw == pytest.approx(want)
            assert result.params["applied_kw"] == pytest.approx(want)
        else:
            assert result.outcome == "refused", result.error
            assert (dev.model.mode, dev.model.command_kw) == before
        dev.restore_normal()


def test_an_unreadable_lease_end_is_refused(sungrow_sim, sungrow_site):
    with open_device(sungrow_site) as dev:
        result = dev.apply("CHARGE", 2.0, until="tomorrow-ish")
    assert result.outcome == "refused" and "not a date-time" in result.error
    assert sungrow_sim.written_addresses(accepted_only=False) == []
