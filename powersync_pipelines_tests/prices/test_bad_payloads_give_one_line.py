"""Real payloads (``../shared/data/real``), damaged the ways a download, an editor or a buggy exporter damages
them: every provider answers with one line naming the problem and exit code 2, or with a frame that is
right. Gaps, NaN slots and one interval at two prices are caught by the one shared mechanism
(``prices.quality``), never silently dropped, filled or "last one wins"."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from powersync_pipelines.cli import main
from powersync_pipelines.prices.errors import PriceDataError
from powersync_pipelines.prices.history import read_aemo_price_and_demand
from powersync_pipelines.prices.octopus import read_octopus_file
from powersync_pipelines.prices.quality import apply_gap_policy, find_gaps

AMBER_DAY = "amber/enkit-matlab/sa_prices_5min/20250115.json"
AEMO_MONTH = "aemo/price_and_demand/VIC1/PRICE_AND_DEMAND_202402_VIC1.csv"
OCTOPUS_J = "octopus/agile_import/csv_agile_J_South_Eastern_England.csv"


def prices(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["prices", *argv, "--format", "csv"])
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_line(code: int, out: str, err: str, *needles: str) -> None:
    assert code == 2, err
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


# -- Amber -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "needle"), [(float("nan"), "got missing"), (float("inf"), "got inf"),
                                               (None, "got missing"), (1e12, "<= 25.0 was expected")])
def test_amber_bad_perkwh_is_one_line(capsys, tmp_path, real_data, value, needle):
    items = json.loads((real_data / AMBER_DAY).read_text())
    items[5]["perKwh"] = value
    f = tmp_path / "amber.json"
    f.write_text(json.dumps(items))
    assert_one_line(*prices(capsys, "--provider", "amber", "--file", str(f)), "amber", needle)


@pytest.mark.parametrize("duration", [1e12, 7, True, "five"])
def test_amber_impossible_duration_is_one_line(capsys, tmp_path, real_data, duration):
    items = json.loads((real_data / AMBER_DAY).read_text())
    items[0]["duration"] = duration
    f = tmp_path / "amber.json"
    f.write_text(json.dumps(items))
    assert_one_line(*prices(capsys, "--provider", "amber", "--file", str(f)), "item 0: duration", "minutes")


def test_amber_four_hour_gap_is_refused_with_where_it_is(capsys, tmp_path, real_data):
    items = [x for x in json.loads((real_data / AMBER_DAY).read_text())
             if not "2025-01-15T02" <= x["startTime"] < "2025-01-15T06"]
    f = tmp_path / "amber.json"
    f.write_text(json.dumps(items))
    assert_one_line(*prices(capsys, "--provider", "amber", "--file", str(f)), "too many gaps", "17%",
                    "no prices for 4 h", "2025-01-15T02:00:00")


# -- AEMO --------------------------------------------------------------------------------------------------
def aemo_lines(real_data: Path, n: int = 300) -> list[str]:
    return (real_data / AEMO_MONTH).read_text().splitlines()[:n]


def aemo_prices(capsys, f: Path) -> tuple[int, str, str]:
    return prices(capsys, "--provider", "aemo", "--region", "VIC1", "--file", str(f))


def test_aemo_truncated_mid_line_names_the_row(capsys, tmp_path, real_data):
    lines = aemo_lines(real_data)
    f = tmp_path / "PRICE_AND_DEMAND_cut.csv"
    f.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])
    assert_one_line(*aemo_prices(capsys, f), "VIC1,2024/02/02 00:5", "cut off")


def test_aemo_inf_rrp_is_one_line(capsys, tmp_path, real_data):
    lines = aemo_lines(real_data)
    cells = lines[10].split(",")
    cells[3] = "inf"
    lines[10] = ",".join(cells)
    f = tmp_path / "aemo.csv"
    f.write_text("\n".join(lines) + "\n")
    assert_one_line(*aemo_prices(capsys, f), "rrp", "non-finite", "got inf")


def test_aemo_dates_with_an_offset_label_are_refused(capsys, tmp_path, real_data):
    lines = aemo_lines(real_data)
    lines[1:] = [x.replace("2024/02/01 00:05:00", "2024-02-01T00:05:00+10:00") for x in lines[1:]]
    f = tmp_path / "aemo.csv"
    f.write_text("\n".join(lines) + "\n")
    assert_one_line(*aemo_prices(capsys, f), "naive NEM time", "+10:00")


def test_aemo_one_interval_at_two_prices_is_refused_not_last_wins(capsys, tmp_path, real_data):
    lines = aemo_lines(real_data)
    cells = lines[12].split(",")
    original = float(cells[3])
    cells[3] = "999.0"
    f = tmp_path / "aemo.csv"
    f.write_text("\n".join([*lines, ",".join(cells)]) + "\n")
    assert_one_line(*aemo_prices(capsys, f), "different prices", f"{original:g}", "999")


def test_aemo_identical_repeated_row_is_harmless(tmp_path, real_data):
    lines = aemo_lines(real_data)
    f = tmp_path / "aemo.csv"
    f.write_text("\n".join([*lines, lines[12]]) + "\n")
    assert len(read_aemo_price_and_demand(f, "VIC1")) == len(lines) - 1


def test_aemo_five_hour_gap_is_refused(capsys, tmp_path, real_data):
    lines = aemo_lines(real_data)
    f = tmp_path / "aemo.csv"
    f.write_text("\n".join(lines[:100] + lines[160:]) + "\n")
    assert_one_line(*aemo_prices(capsys, f), "too many gaps", "no prices for 5 h")


# -- Octopus -----------------------------------------------------------------------------------------------
def octopus(capsys, f: Path) -> tuple[int, str, str]:
    return prices(capsys, "--provider", "octopus", "--gsp", "J", "--file", str(f))


def page(n: int = 48) -> list[dict]:
    starts = pd.date_range("2024-01-01", periods=n, freq="30min", tz="UTC")
    return [{"value_exc_vat": 10 + i % 7, "value_inc_vat": 10.5 + i % 7, "payment_method": None,
             "valid_from": s.strftime("%Y-%m-%dT%H:%M:%SZ"),
             "valid_to": (s + pd.Timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")}
            for i, s in enumerate(starts)][::-1]


def write_page(tmp_path: Path, results: list[dict], text: str | None = None) -> Path:
    f = tmp_path / "rates.json"
    f.write_text(text if text is not None else json.dumps({"count": len(results), "next": None, "results": results}))
    return f


def test_octopus_zero_byte_csv(capsys, tmp_path):
    f = tmp_path / "agile.csv"
    f.write_text("")
    assert_one_line(*octopus(capsys, f), "octopus", "empty")


def test_octopus_csv_cut_off_mid_timestamp(capsys, tmp_path, real_data):
    lines = (real_data / OCTOPUS_J).read_text().splitlines()[:200]
    f = tmp_path / "agile.csv"
    f.write_text("\n".join(lines) + "\n2020-01-0")
    assert_one_line(*octopus(capsys, f), "'2020-01-0'", "cut off")


def test_octopus_nan_slot_is_refused_not_dropped(capsys, tmp_path):
    results = page()
    results[3]["value_inc_vat"] = float("nan")
    assert_one_line(*octopus(capsys, write_page(tmp_path, results)), "item 3", "not a finite number")


def test_octopus_item_without_valid_from(capsys, tmp_path):
    results = page()
    del results[3]["valid_from"]
    assert_one_line(*octopus(capsys, write_page(tmp_path, results)), "item 3 lacks 'valid_from'")


def test_octopus_naive_times(capsys, tmp_path):
    results = page()
    for r in results:
        r["valid_from"], r["valid_to"] = r["valid_from"][:-1], r["valid_to"][:-1]
    assert_one_line(*octopus(capsys, write_page(tmp_path, results)), "no UTC offset")


def test_octopus_truncated_json(capsys, tmp_path):
    f = write_page(tmp_path, [], text=json.dumps({"results": page()})[:500])
    assert_one_line(*octopus(capsys, f), "malformed json")


def test_octopus_slot_with_two_rates_is_refused(tmp_path):
    results = page()
    results.append({**results[5], "value_inc_vat": 99.0})
    with pytest.raises(PriceDataError, match="two rates"):
        read_octopus_file(write_page(tmp_path, results))


def test_octopus_four_hour_gap_refused_and_short_csv_gap_warned(capsys, tmp_path, real_data):
    results = [r for i, r in enumerate(page()) if not 10 <= i < 18]
    assert_one_line(*octopus(capsys, write_page(tmp_path, results)), "too many gaps", "no prices for 4 h")
    lines = (real_data / OCTOPUS_J).read_text().splitlines()[:200]
    f = tmp_path / "agile.csv"
    f.write_text("\n".join(lines[:100] + lines[110:]) + "\n")  # 5 h missing in ~4 days: served, with a warning
    code, out, err = octopus(capsys, f)
    assert code == 0 and len(out.splitlines()) == 1 + 189
    assert "warning: octopus: no prices for 5 h (10 intervals) from 2020-01-03T01:30:00+00:00" in err


# -- the shared gap mechanism --------------------------------------------------------------------------------
def test_short_gaps_are_filled_and_flagged_long_ones_reported():
    idx = pd.date_range("2024-01-01", periods=288, freq="5min", tz="UTC", name="interval_start")
    frame = pd.DataFrame({"import_price": 0.2, "export_price": 0.05}, index=idx)
    holed = frame.drop(index=idx[10:13]).drop(index=idx[100:124])  # 15 min (fillable) and 2 h (not)
    assert [(g.start, g.intervals) for g in find_gaps(holed.index)] == [(idx[10], 3), (idx[100], 24)]
    out = apply_gap_policy(holed, "amber")
    assert int(out["filled"].sum()) == 3 and out.loc[idx[10:13], "import_price"].eq(0.2).all()
    assert idx[100] not in out.index
    assert any("no prices for 2 h (24 intervals)" in w for w in out.attrs["warnings"])


# -- a file cut inside its last price (found by the fuzz campaign) -------------------------------------------------
def test_aemo_cut_inside_the_last_rrp_is_not_a_smaller_price(capsys, tmp_path, real_data):
    lines = aemo_lines(real_data, 21)
    f = tmp_path / "aemo.csv"
    f.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: lines[-1].index(",", 30) + 2])  # '...,4074.38,7'
    assert_one_line(*aemo_prices(capsys, f), "no line break", "cut off")
    f.write_text("\n".join(lines[:-1]) + "\n" + lines[-1].rsplit(",", 1)[0] + "\n")  # complete line, one field short
    assert_one_line(*aemo_prices(capsys, f), "data row 20 has fewer fields than the header")


def test_octopus_cut_inside_the_last_price(capsys, tmp_path, real_data):
    lines = (real_data / OCTOPUS_J).read_text().splitlines()[:50]
    f = tmp_path / "agile.csv"
    f.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:-2])  # '...,9.933' -> '...,9.9'
    assert_one_line(*octopus(capsys, f), "no line break", "cut off")
