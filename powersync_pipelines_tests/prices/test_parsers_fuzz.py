"""Fuzzing every provider parser from real payloads: a valid price frame or a one-line typed error, never a
traceback, never a silently wrong frame.

Seeds are real files read from ``../shared/data/real`` (never copied: the Amber files carry no licence) and the
NEMWEB fixtures. Hypothesis mutates them the ways payloads break: a cell or field set to junk (null, NaN, inf,
1e12, text, a list), a key deleted, a row or item repeated (same or another price), a run of rows dropped (a
gap), the text cut at any byte, an offset label added to a NEM time. The oracle for "silently wrong": every
price in a returned frame equals the one the (mutated) payload states for that interval, and an interval the
payload states at two different prices is never served.

The normal suite runs ``FUZZ_EXAMPLES`` examples per parser (fast); ``make reliability`` runs the same tests
under ``-m reliability`` with ``POWERSYNC_FUZZ_EXAMPLES`` set high.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powersync_pipelines.config import ProviderConfig
from powersync_pipelines.prices.aemo import read_aemo_file
from powersync_pipelines.prices.amber import read_amber_file
from powersync_pipelines.prices.errors import PriceDataError
from powersync_pipelines.prices.history import PriceFileError, read_normalized_csv
from powersync_pipelines.prices.octopus import read_octopus_file
from powersync_pipelines.prices.quality import apply_gap_policy
from powersync_pipelines.prices.saved import read_provider_file
from powersync_pipelines.schemas import PRICE_MAX, PRICE_MIN, PriceFrame

from .conftest import FIXTURES

pytestmark = pytest.mark.reliability

FUZZ_EXAMPLES = int(os.environ.get("POWERSYNC_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])
TYPED = (PriceDataError, PriceFileError)
JUNK: list[Any] = [None, float("nan"), float("inf"), float("-inf"), 1e12, -1e12, 0, -5, "abc", "", "NaN", [], {},
                   True, False, "2025-01-15T00:00:00", "2025-01-15T00:00:00+10:00"]
junk = st.one_of(st.sampled_from(JUNK), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
                 st.integers(-10**6, 10**6))
junk_text = st.one_of(st.sampled_from(["", "nan", "inf", "-inf", "1e12", "abc", '"', "2024/02/01", "+10:00",
                                       "2024-02-01T00:05:00+10:00", ",", "1,2"]),
                      st.text(alphabet=st.characters(codec="ascii", exclude_characters="\n\r"), max_size=8))


def served(read: Callable[[], pd.DataFrame], provider: str) -> pd.DataFrame | None:
    """The parser then the gap policy, as ``powersync prices`` serves a file; None for a typed error."""
    try:
        frame = read()
        return apply_gap_policy(frame, provider)
    except TYPED as exc:
        assert "\n" not in str(exc) and str(exc).strip(), repr(exc)
        return None


def check_frame(frame: pd.DataFrame) -> None:
    """What every served frame is: the schema, finite prices in the band, unique UTC intervals in order."""
    PriceFrame.validate(frame)
    assert frame.index.is_unique and frame.index.is_monotonic_increasing and str(frame.index.tz) == "UTC"
    for col in ("import_price", "export_price"):
        v = frame[col].to_numpy(dtype=float)
        assert np.isfinite(v).all() and (v >= PRICE_MIN).all() and (v <= PRICE_MAX).all()


def agrees(frame: pd.DataFrame, stated: dict[pd.Timestamp, set[float]], column: str = "import_price",
           scale: float = 1.0) -> None:
    """Each served (non-filled) price is the one price the payload states for that interval."""
    published = frame[~frame["filled"]] if "filled" in frame else frame
    for ts, price in published[column].items():
        values = stated.get(ts)
        assert values, f"{ts} served but the payload has no well-formed row for it"
        assert len(values) == 1, f"{ts} is stated at {sorted(values)} and was still served"
        assert math.isclose(price, next(iter(values)) * scale, rel_tol=1e-9, abs_tol=1e-9), (ts, price, values)


# -- line mutations (CSV) -----------------------------------------------------------------------------------
@st.composite
def mutated_lines(draw: st.DrawFn, lines: list[str], header: int = 1, sep: str = ",") -> str:
    out = list(lines)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["cell", "dup", "dup_changed", "drop", "truncate", "garbage", "offset"]))
        body = range(header, len(out))
        if not body:
            break
        i = draw(st.sampled_from(body))
        cells = out[i].split(sep)
        if op == "cell":
            cells[draw(st.integers(0, len(cells) - 1))] = draw(junk_text)
            out[i] = sep.join(cells)
        elif op == "dup":
            out.insert(i, out[i])
        elif op == "dup_changed":
            cells[-1 if len(cells) < 4 else 3] = str(draw(st.floats(-100, 1000, allow_nan=False)))
            out.insert(i, sep.join(cells))
        elif op == "drop":
            j = min(len(out), i + draw(st.integers(1, 80)))
            del out[i:j]
        elif op == "garbage":
            out.insert(i, draw(junk_text))
        elif op == "offset":
            k = 1 if len(cells) > 2 else 0
            cells[k] = cells[k] + draw(st.sampled_from(["+10:00", "Z", "+11:00", "-05:00"]))
            out[i] = sep.join(cells)
        else:
            text = "\n".join(out)
            return text[: draw(st.integers(0, len(text)))]
    return "\n".join(out) + "\n"


# -- AEMO price-and-demand ----------------------------------------------------------------------------------
AEMO = "aemo/price_and_demand/VIC1/PRICE_AND_DEMAND_202402_VIC1.csv"


def aemo_stated(text: str) -> dict[pd.Timestamp, set[float]]:
    """Interval start -> RRPs stated by well-formed rows (NEM-time END, UTC+10)."""
    out: dict[pd.Timestamp, set[float]] = {}
    for line in text.split("\n")[1:]:  # pandas splits rows on \n (and \r) only, not on \x0c like splitlines
        cells = line.rstrip("\r").split(",")
        if len(cells) != 5 or cells[0].strip() != "VIC1":
            continue
        try:
            end = pd.to_datetime(cells[1].strip(), format="%Y/%m/%d %H:%M:%S")
            rrp = float(cells[3])
        except ValueError:
            continue
        start = (end - pd.Timedelta(hours=10, minutes=5)).tz_localize("UTC")
        out.setdefault(start, set()).add(rrp)
    return out


@pytest.fixture(scope="module")
def aemo_seed() -> list[str]:
    root = _real()
    return (root / AEMO).read_text().splitlines()[:120]


def _real() -> Path:
    from powersync_pipelines.paths import shared_real_data

    root = shared_real_data()
    if root is None:
        pytest.skip("../shared/data/real is not present on this machine")
    return root


@FUZZ
@given(data=st.data())
def test_aemo_price_and_demand_fuzz(tmp_path_factory, aemo_seed, data):
    text = data.draw(mutated_lines(aemo_seed))
    f = tmp_path_factory.mktemp("aemo") / "PRICE_AND_DEMAND_fuzz.csv"
    f.write_text(text)
    frame = served(lambda: read_aemo_file(f, "VIC1"), "aemo")
    if frame is not None:
        check_frame(frame)
        agrees(frame, aemo_stated(text), column="rrp")


# -- Octopus CSV and JSON -----------------------------------------------------------------------------------
OCTOPUS_CSV = ("octopus/agile_import/csv_agile_A_Eastern_England.csv", "octopus/agile_import/csv_agile_J_South_Eastern_England.csv",
               "octopus/agile_outgoing/csv_agileoutgoing_C_London.csv")


def octopus_stated(text: str) -> dict[pd.Timestamp, set[float]]:
    out: dict[pd.Timestamp, set[float]] = {}
    for line in text.split("\n"):
        cells = line.rstrip("\r").split(",")
        try:
            ts = pd.Timestamp(cells[0].strip())
            price = float(cells[-1])
        except (ValueError, IndexError):
            continue
        if ts.tzinfo is None:
            continue
        out.setdefault(ts.tz_convert("UTC"), set()).add(price / 100.0)
    return out


@FUZZ
@given(data=st.data())
def test_octopus_csv_fuzz(tmp_path_factory, data):
    name = data.draw(st.sampled_from(OCTOPUS_CSV))
    seed = (_real() / name).read_text().splitlines()[:100]
    header = 0 if seed[0][:4].isdigit() else 1
    text = data.draw(mutated_lines(seed, header=header))
    f = tmp_path_factory.mktemp("oct") / "rates.csv"
    f.write_text(text)
    frame = served(lambda: read_octopus_file(f), "octopus")
    if frame is not None:
        check_frame(frame)
        agrees(frame, octopus_stated(text))


@st.composite
def mutated_items(draw: st.DrawFn, items: list[dict[str, Any]], price_key: str) -> str:
    out = [dict(x) for x in items]
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["field", "delete", "dup", "dup_changed", "drop", "truncate"]))
        i = draw(st.integers(0, len(out) - 1)) if out else 0
        if not out:
            break
        if op == "field":
            out[i][draw(st.sampled_from(sorted(out[i])))] = draw(junk)
        elif op == "delete" and out[i]:
            del out[i][draw(st.sampled_from(sorted(out[i])))]
        elif op == "dup":
            out.insert(i, dict(out[i]))
        elif op == "dup_changed":
            out.insert(i, {**out[i], price_key: draw(st.floats(-50, 500, allow_nan=False))})
        elif op == "drop":
            del out[i:i + draw(st.integers(1, 60))]
        else:
            text = json.dumps(out)
            return text[: draw(st.integers(0, len(text)))]
    return json.dumps(out)


def octopus_results(seed: list[str]) -> list[dict[str, Any]]:
    """A ``standard-unit-rates`` page (documented shape, newest first) holding real region-J prices."""
    rows = []
    for line in seed[1:]:
        ts, price = line.split(",")
        start = pd.Timestamp(ts).tz_convert("UTC")
        rows.append({"value_exc_vat": round(float(price) / 1.05, 4), "value_inc_vat": float(price),
                     "valid_from": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                     "valid_to": (start + pd.Timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                     "payment_method": None})
    return rows[::-1]


def json_stated(items: Any, when: Callable[[dict[str, Any]], pd.Timestamp | None],
                price: Callable[[dict[str, Any]], float | None]) -> dict[pd.Timestamp, set[float]]:
    out: dict[pd.Timestamp, set[float]] = {}
    for it in items if isinstance(items, list) else []:
        if not isinstance(it, dict):
            continue
        try:
            ts, value = when(it), price(it)
        except (KeyError, TypeError, ValueError, OverflowError):
            continue
        if ts is not None and value is not None and math.isfinite(value):
            out.setdefault(ts, set()).add(value)
    return out


def _octopus_when(it: dict[str, Any]) -> pd.Timestamp | None:
    ts = pd.Timestamp(it["valid_from"])
    return ts.tz_convert("UTC") if ts.tzinfo is not None else None


@FUZZ
@given(data=st.data())
def test_octopus_json_fuzz(tmp_path_factory, data):
    seed = (_real() / OCTOPUS_CSV[1]).read_text().splitlines()[:97]
    text = data.draw(mutated_items(octopus_results(seed), "value_inc_vat"))
    f = tmp_path_factory.mktemp("octj") / "rates.json"
    try:  # the documented page shape around the mutated results; a cut-off text stays cut off
        f.write_text(json.dumps({"count": 0, "next": None, "results": json.loads(text)}))
    except ValueError:
        f.write_text('{"count": 0, "next": null, "results": ' + text)
    frame = served(lambda: read_octopus_file(f), "octopus")
    if frame is not None:
        check_frame(frame)
        body = json.loads(f.read_text())
        stated = json_stated(body.get("results") if isinstance(body, dict) else body, _octopus_when,
                             lambda it: float(it["value_inc_vat"]) / 100.0 if not isinstance(it["value_inc_vat"], bool) else None)
        agrees(frame, stated)


# -- Amber ------------------------------------------------------------------------------------------------------
AMBER_DAYS = ("amber/enkit-matlab/sa_prices_5min/20250115.json", "amber/enkit-matlab/sa_prices_30min/20250115.json",
              "amber/enkit-matlab/sa_forecast_5min/raw_example")


def amber_seed(name: str) -> list[dict[str, Any]]:
    p = _real() / name
    if p.is_dir():
        p = sorted(p.glob("*.json"))[0]
    items = json.loads(p.read_text())
    return items[:90]


def _amber_when(it: dict[str, Any]) -> pd.Timestamp | None:
    if it.get("channelType") != "general" or isinstance(it.get("duration"), bool):
        return None
    end = pd.Timestamp(it["endTime"])
    return None if end.tzinfo is None else end.tz_convert("UTC") - pd.Timedelta(minutes=int(it["duration"]))


def _amber_price(it: dict[str, Any]) -> float | None:
    adv = it.get("advancedPrice")
    if it.get("type") in ("ForecastInterval", "CurrentInterval") and isinstance(adv, dict) \
            and isinstance(adv.get("predicted"), int | float) and not isinstance(adv.get("predicted"), bool):
        return float(adv["predicted"]) / 100.0
    v = it["perKwh"]
    return None if isinstance(v, bool) else float(v) / 100.0


@FUZZ
@given(data=st.data())
def test_amber_fuzz(tmp_path_factory, data):
    items = amber_seed(data.draw(st.sampled_from(AMBER_DAYS)))
    text = data.draw(mutated_items(items, "perKwh"))
    f = tmp_path_factory.mktemp("amber") / "prices.json"
    f.write_text(text)
    frame = served(lambda: read_amber_file(f), "amber")
    if frame is not None:
        check_frame(frame)
        body = json.loads(text)
        durations = {it.get("duration") for it in body if isinstance(it, dict)}
        if durations <= {5} or durations <= {30}:  # mixed grids are re-sliced: compared per source interval above
            agrees(frame, json_stated(body, _amber_when, _amber_price))


# -- NEMWEB reports ---------------------------------------------------------------------------------------------
NEMWEB = sorted(FIXTURES.glob("PUBLIC_*.CSV"))


@FUZZ
@given(data=st.data())
def test_nemweb_report_fuzz(tmp_path_factory, data):
    seed = data.draw(st.sampled_from(NEMWEB))
    lines = seed.read_text().splitlines()
    text = data.draw(mutated_lines(lines, header=1))
    f = tmp_path_factory.mktemp("nem") / seed.name
    f.write_text(text)
    region = data.draw(st.sampled_from(["NSW1", "VIC1", "SA1"]))
    frame = served(lambda: read_aemo_file(f, region), "aemo")
    if frame is not None:
        check_frame(frame)


# -- normalised CSV and the saved-payload dispatcher --------------------------------------------------------------
@pytest.fixture(scope="module")
def normalized_seed() -> list[str]:
    frame = read_amber_file(_real() / AMBER_DAYS[0]).iloc[:80]
    lines = ["interval_start,import_price,export_price,spike_status,is_forecast"]
    lines += [f"{t.strftime('%Y-%m-%dT%H:%M:%SZ')},{r.import_price},{r.export_price},{r.spike_status},false"
              for t, r in frame.iterrows()]
    return lines


def normalized_stated(text: str) -> dict[pd.Timestamp, set[float]]:
    out: dict[pd.Timestamp, set[float]] = {}
    for line in text.split("\n")[1:]:
        cells = line.rstrip("\r").split(",")
        try:
            ts = pd.Timestamp(cells[0])
            out.setdefault(ts.tz_convert("UTC"), set()).add(float(cells[1]))
        except (ValueError, IndexError, TypeError):
            continue
    return out


@FUZZ
@given(data=st.data())
def test_normalized_csv_and_saved_dispatch_fuzz(tmp_path_factory, normalized_seed, data):
    text = data.draw(mutated_lines(normalized_seed))
    f = tmp_path_factory.mktemp("norm") / "prices.csv"
    f.write_text(text)
    frame = served(lambda: read_normalized_csv(f), "normalized")
    if frame is not None:
        check_frame(frame)
        agrees(frame, normalized_stated(text))
    kind = data.draw(st.sampled_from(["amber", "aemo", "octopus"]))
    prov = ProviderConfig.model_validate({"kind": kind, "region": "SA1" if kind == "aemo" else None,
                                          "gsp": "J" if kind == "octopus" else None})
    via_saved = served(lambda: read_provider_file(kind, f, prov, "UTC"), kind)
    assert (via_saved is None) == (frame is None) or not text.startswith("interval_start")
