"""Sync decisions against a real DuckDB file: upload on material change only, record all, abort on gaps."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from powersync_pipelines.storage import HistoryStore
from powersync_pipelines.tariffs.sync import decide, last_sent, sync_tariff
from powersync_pipelines.tariffs.tesla import payload_hash

from .factories import encoded_prices, make_site

START = pd.Timestamp("2024-06-03T00:00:00Z")


class RecordingUploader:
    """Stands in for the device driver's upload: keeps what it was given, answers like the Fleet API."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[dict] = []
        self.fail = fail

    def __call__(self, payload: dict) -> dict:
        self.calls.append(payload)
        if self.fail:
            raise ConnectionError("fleet api unreachable")
        return {"response": {"code": 201, "message": "Updated"}}


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    return HistoryStore(tmp_path / "history.duckdb")


def _rows(store: HistoryStore) -> pd.DataFrame:
    return store.query("SELECT * FROM tariff_payloads ORDER BY created_at")


def test_first_sync_uploads_then_unchanged_prices_skip(store: HistoryStore) -> None:
    site = make_site("Australia/Brisbane")
    frame = encoded_prices(START, 30)
    up = RecordingUploader()
    first = sync_tariff(frame, site, START, store, up)
    assert first.action == "upload" and first.sent and len(up.calls) == 1
    again = sync_tariff(frame, site, START + pd.Timedelta(minutes=5), store, up)
    assert again.action == "skip" and again.reason == "unchanged" and len(up.calls) == 1
    rows = _rows(store)
    assert list(rows["sent"]) == [True, False]
    assert json.loads(rows.iloc[0]["reply"]) == {"response": {"code": 201, "message": "Updated"}}
    assert rows.iloc[0]["payload_hash"] == payload_hash(json.loads(rows.iloc[0]["payload"]))
    assert last_sent(store, site.id, "tesla")[1] == first.payload_hash


def test_small_changes_accumulate_until_material(store: HistoryStore) -> None:
    site = make_site("Australia/Brisbane")
    frame = encoded_prices(START, 30)
    up = RecordingUploader()
    sync_tariff(frame, site, START, store, up)
    nudged = frame.copy()
    nudged.loc["2024-06-03T05:00Z":"2024-06-03T05:25Z", "import_price"] += 0.004
    step = sync_tariff(nudged, site, START + pd.Timedelta(minutes=5), store, up)
    assert step.action == "skip" and "below threshold" in step.reason and step.diff["max_change"] == pytest.approx(0.004)
    more = nudged.copy()
    more.loc["2024-06-03T05:00Z":"2024-06-03T05:25Z", "import_price"] += 0.007  # 1.1 c from what was *sent*
    step = sync_tariff(more, site, START + pd.Timedelta(minutes=10), store, up)
    assert step.action == "upload" and step.sent and len(up.calls) == 2
    assert list(step.diff["changes"]) == ["PERIOD_15_00"]
    assert step.diff["changes"]["PERIOD_15_00"]["buy"][1] - step.diff["changes"]["PERIOD_15_00"]["buy"][0] == pytest.approx(0.011)
    note = json.loads(_rows(store).iloc[-1]["note"])
    assert note["changed_periods"] == ["PERIOD_15_00"] and note["action"] == "upload"


def test_too_many_missing_prices_abort_and_keep_the_last_good(store: HistoryStore) -> None:
    site = make_site("Australia/Brisbane")
    frame = encoded_prices(START, 30)
    up = RecordingUploader()
    good = sync_tariff(frame, site, START, store, up)
    holed = frame.drop(frame.loc["2024-06-03T06:00Z":"2024-06-03T08:35Z"].index)  # 32 of 288 slots = 11 %
    bad = sync_tariff(holed, site, START + pd.Timedelta(minutes=5), store, up)
    assert bad.action == "abort" and "11% of the next 24 h" in bad.reason and len(up.calls) == 1
    assert last_sent(store, site.id, "tesla")[1] == good.payload_hash
    assert _rows(store).iloc[-1]["note"].startswith("aborted")
    gap = frame.loc["2024-06-03T06:00Z":].index
    assert decide(frame.drop(gap[:29]), site, START, "tesla", None).action == "abort"  # 29/288 = 10.07 %
    within = decide(frame.drop(gap[:28]), site, START, "tesla", None)  # 28/288 = 9.7 %: filled and synced
    assert within.action == "upload" and within.missing_fraction == pytest.approx(28 / 288)


def test_upload_failure_is_recorded_and_not_treated_as_sent(store: HistoryStore) -> None:
    site = make_site("Australia/Brisbane")
    frame = encoded_prices(START, 30)
    failed = sync_tariff(frame, site, START, store, RecordingUploader(fail=True))
    assert not failed.sent and failed.error == "ConnectionError: fleet api unreachable"
    assert last_sent(store, site.id, "tesla") is None
    assert json.loads(_rows(store).iloc[0]["reply"]) == {"error": "ConnectionError: fleet api unreachable"}
    retry = sync_tariff(frame, site, START, store, RecordingUploader())
    assert retry.action == "upload" and retry.sent


def test_sigenergy_sync_and_dry_run(store: HistoryStore) -> None:
    site = make_site("Australia/Brisbane", battery_kind="sigenergy")
    frame = encoded_prices(START, 30)
    dry = sync_tariff(frame, site, START, store, upload=None)
    assert dry.format == "sigenergy" and dry.action == "upload" and not dry.sent
    assert _rows(store).iloc[0]["format"] == "sigenergy"


def test_rows_padded_by_the_pipeline_count_as_missing() -> None:
    site = make_site("Australia/Brisbane")
    frame = encoded_prices(START, 30)
    frame["filled"] = False
    frame.loc["2024-06-03T12:00Z":"2024-06-03T15:00Z", "filled"] = True  # 37 of 288 slots padded
    decision = decide(frame, site, START, "tesla", None)
    assert decision.action == "abort" and decision.missing_fraction == pytest.approx(37 / 288)


def test_rerunning_a_planning_slot_updates_its_row_instead_of_adding_one(store: HistoryStore) -> None:
    """The demo re-run (same replay clock) used to add an identical row every time; README says re-runs update."""
    site = make_site("Australia/Brisbane")
    frame = encoded_prices(START, 30)
    up = RecordingUploader()
    first = sync_tariff(frame, site, START, store, up)
    again = sync_tariff(frame, site, START + pd.Timedelta(minutes=2), store, up)  # same 5-min slot
    assert again.payload_id == first.payload_id and len(_rows(store)) == 1
    row = _rows(store).iloc[0]
    assert bool(row["sent"]) and row["payload_hash"] == first.payload_hash  # "sent" is not downgraded by the skip
    assert last_sent(store, site.id, "tesla")[1] == first.payload_hash and len(up.calls) == 1
    later = sync_tariff(frame, site, START + pd.Timedelta(minutes=5), store, up)  # the next slot: its own row
    assert later.payload_id != first.payload_id and len(_rows(store)) == 2


def test_a_failed_upload_then_a_rerun_of_the_slot_leaves_one_row_that_says_sent(store: HistoryStore) -> None:
    site = make_site("Australia/Brisbane")
    frame = encoded_prices(START, 30)
    failed = sync_tariff(frame, site, START, store, RecordingUploader(fail=True))
    assert not failed.sent
    ok = sync_tariff(frame, site, START, store, RecordingUploader())
    rows = _rows(store)
    assert ok.sent and ok.payload_id == failed.payload_id and len(rows) == 1 and bool(rows.iloc[0]["sent"])
    assert json.loads(rows.iloc[0]["reply"]) == {"response": {"code": 201, "message": "Updated"}}
