"""The planning stages read every site's switches in one query (``in_effect_many``); a single site's read
(``in_effect``, used by ``run_cycle`` and the services) must give the same site, whatever is stored: nothing,
a service-set value equal to or different from the file's, a value changed since, or a row this version cannot
read. On both history backends."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powersync_pipelines.config import SiteConfig
from powersync_pipelines.control import switches
from powersync_pipelines.control.switches import in_effect, in_effect_many, save, stored, stored_many
from powersync_pipelines.storage import HistoryStore

SITE_IDS = ["demo", "o'brien", "site 2", "Ünïcode"]  # a quote and spaces prove the ids are bound, not pasted
NOW = pd.Timestamp("2024-02-12T20:00:00Z")

# per setting: not stored, a value (maybe the file's own), or a row this version cannot read
VALUES = {
    "optimization": st.sampled_from([None, "on", "off", "maybe"]),
    "auto_tou_sync": st.sampled_from([None, "on", "off", "1"]),
    "cost_function": st.sampled_from([None, "cost", "self_consumption", "profit!"]),
}
SITE_ROWS = st.fixed_dictionaries(VALUES)


@pytest.fixture
def fleet(demo_site: SiteConfig) -> list[SiteConfig]:
    """Four sites whose file values differ, so a stored value sometimes equals the file's and sometimes not."""
    return [demo_site.model_copy(update={"id": sid, "optimization": i % 2 == 0, "auto_tou_sync": i < 2,
                                         "cost_function": "self_consumption" if i == 3 else "cost"})
            for i, sid in enumerate(SITE_IDS)]


def _store_rows(store: HistoryStore, rows: dict[str, dict[str, str | None]]) -> None:
    """Replace ``site_settings`` with ``rows`` as written (bad values too: an older or newer version's row)."""
    with store.connect() as con:
        con.execute("DELETE FROM site_settings")
    frame = pd.DataFrame([{"site_id": sid, "setting": name, "value": value, "set_at": NOW, "set_by": "test"}
                          for sid, values in rows.items() for name, value in values.items() if value is not None])
    if not frame.empty:
        store.upsert("site_settings", frame, ["site_id", "setting"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.fixed_dictionaries({sid: SITE_ROWS for sid in SITE_IDS}))
def test_the_bulk_read_gives_every_site_what_its_own_read_gives(any_store: HistoryStore, fleet, rows) -> None:
    _store_rows(any_store, rows)
    assert stored_many(any_store, SITE_IDS) == {sid: got for sid in SITE_IDS if (got := stored(any_store, sid))}
    bulk = in_effect_many(any_store, fleet)
    assert [s.id for s in bulk] == SITE_IDS  # same sites, same order
    for site, one in zip(fleet, bulk, strict=True):
        assert one == in_effect(any_store, site)
        readable = {k: v for k, v in rows[site.id].items() if v is not None}
        assert one.optimization == (readable["optimization"] == "on" if readable.get("optimization") in ("on", "off")
                                    else site.optimization)
        assert one.cost_function == (readable["cost_function"]
                                     if readable.get("cost_function") in ("cost", "self_consumption")
                                     else site.cost_function)


def test_a_changed_switch_is_seen_by_both_reads_and_unchanged_sites_are_the_file_objects(any_store, fleet) -> None:
    save(any_store, "o'brien", "optimization", True, NOW, "test")
    first = in_effect_many(any_store, fleet)
    assert first[1].optimization is True and first[1] == in_effect(any_store, fleet[1])
    save(any_store, "o'brien", "optimization", False, NOW + pd.Timedelta(minutes=5), "test")  # changed since
    again = in_effect_many(any_store, fleet)
    assert again[1].optimization is False and again[1] == in_effect(any_store, fleet[1])
    # a site with nothing stored is handed on as it is (no copy per site per stage)
    assert all(again[i] is fleet[i] for i in (0, 2, 3))


def test_no_store_and_no_sites_read_nothing(any_store, fleet) -> None:
    assert in_effect_many(None, fleet) == fleet
    assert in_effect_many(any_store, []) == [] and stored_many(any_store, []) == {}


def test_more_sites_than_one_statement_binds_are_read_in_chunks(store, fleet, monkeypatch) -> None:
    monkeypatch.setattr(switches, "IDS_PER_QUERY", 3)
    save(store, "Ünïcode", "cost_function", "cost", NOW, "test")  # the last site: in the second chunk
    save(store, "demo", "auto_tou_sync", False, NOW, "test")
    got = in_effect_many(store, fleet)
    assert got[3].cost_function == "cost" and got[0].auto_tou_sync is False
    assert got == [in_effect(store, s) for s in fleet]
