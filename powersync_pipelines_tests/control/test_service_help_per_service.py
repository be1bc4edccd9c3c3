"""``powersync service NAME --help`` shows NAME's own parameters in its own words; the shared list names each
service's meaning of a flag several services share (``--mode``, ``--duration-minutes``)."""

from __future__ import annotations

import pytest

from powersync_pipelines.cli import main as cli_main


def _help(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as done:
        cli_main(["service", *argv])
    assert done.value.code == 0
    return "".join(capsys.readouterr().out.split())  # argparse wraps lines, even inside a word


def _has(text: str, *phrases: str) -> bool:
    return all("".join(p.split()) in text for p in phrases)


def test_each_service_shows_its_own_parameters_and_wording(capsys):
    ev = _help(capsys, "ev_set_mode", "--help")
    assert _has(ev, "usage: powersync service ev_set_mode --site-id SITE_ID")
    assert _has(ev, "--mode MODE EV charging mode solar_only|solar_preferred|cost_optimized|time_critical (required)")
    assert _has(ev, "--departure") and _has(ev, "--target-kwh") and _has(ev, "(acts as manual)")
    assert not _has(ev, "self_consumption|autonomous|backup") and not _has(ev, "--kw") and not _has(ev, "--duration-minutes")

    tesla = _help(capsys, "set_operation_mode", "-h")
    assert _has(tesla, "--mode MODE operation mode self_consumption|autonomous|backup (required)")
    assert not _has(tesla, "EV charging mode") and _has(tesla, "batteries: Tesla Powerwall")

    start = _help(capsys, "ev_start_session", "--site-id", "demo", "--help")
    assert _has(start, "how long the EV plan may not override a start/stop [min] >= 15 and <= 720 (default 120)")
    assert not _has(start, "forced-mode duration")

    status = _help(capsys, "ev_status", "--help")
    assert _has(status, "(reads only)") and not _has(status, "--mode")


def test_the_shared_list_gives_each_services_meaning_of_a_shared_flag(capsys):
    shared = _help(capsys, "--help")
    assert _has(shared, "set_operation_mode: operation mode self_consumption|autonomous|backup")
    assert _has(shared, "ev_set_mode: EV charging mode solar_only|solar_preferred|cost_optimized|time_critical")
    assert _has(shared, "force_charge, force_discharge, sungrow_force_charge, sungrow_force_discharge: forced-mode duration")
    assert _has(shared, "ev_start_session, ev_stop_session: how long the EV plan may not override a start/stop")
    assert _has(shared, "ev_set_mode") and _has(shared, "NAME --help for its parameters")


def test_an_unknown_service_name_still_gets_the_full_list(capsys):
    text = _help(capsys, "no_such_service", "--help")
    assert _has(text, "services (acting as manual unless stated):") and _has(text, "ev_set_mode")
