"""Fuzzing the sites file: any edit of a real sites file either loads as a valid fleet or is refused with a
``SiteConfigError`` naming what is wrong; never a traceback, never a bool or NaN read as a number.

Seeds: the shipped demo file and a richer site (every section). Edits: a value replaced by junk (true, null,
NaN, inf, huge, negative, text, a list, a mapping), a key deleted, an unknown key added, a key written twice,
the text cut at any byte. The loader's YAML reader is also checked against ``yaml.safe_load`` on documents
without duplicate keys: the same values.

A fast subset runs in the normal suite; ``make reliability`` runs it long (``POWERSYNC_FUZZ_EXAMPLES``).
"""

from __future__ import annotations

import math
import os
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powersync_pipelines.config import SiteConfigError, load_sites
from powersync_pipelines.config.yaml_load import load_yaml
from powersync_pipelines.paths import DATA_DIR, DEFAULT_SITES_FILE

pytestmark = pytest.mark.reliability

FUZZ = settings(max_examples=int(os.environ.get("POWERSYNC_FUZZ_EXAMPLES", "25")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
JUNK: list[Any] = [True, False, None, float("nan"), float("inf"), -1.0, 0, 1e12, "abc", "", [], {}, [1, 2],
                   {"x": 1}, "2024-02-12T20:00:00Z", "not-a-date", 502, 13.5]

RICH = {
    "id": "rich", "timezone": "Australia/Adelaide", "country": "AU", "latitude": -34.9, "longitude": 138.6,
    "provider": {"kind": "replay", "region": "SA1", "format": "aemo", "replay_start": "2024-02-12T20:00:00Z",
                 "file": str(DATA_DIR / "prices" / "PRICE_AND_DEMAND_202402_VIC1_excerpt.csv"),
                 "retail": {"network_adder_per_kwh": 0.1, "gst": 0.1}},
    "battery": {"kind": "sigenergy", "host": "192.0.2.7", "port": 502, "device_id": 247, "capacity_kwh": 20,
                "max_charge_kw": 10, "max_discharge_kw": 10, "backup_reserve_pct": 10, "optimizer_reserve_pct": 20},
    "solar": {"peak_kw": 8, "tilt": 25, "azimuth": 10},
    "load": {"profile": str(DATA_DIR / "profiles" / "ausgrid_customer12.csv"), "annual_kwh": 6000},
    "limits": {"export_kw": 5, "import_kw": 20},
    "ac_inverter": {"brand": "fronius", "host": "192.0.2.8"},
    "ev": {"charger": "ocpp", "max_amps": 32, "phases": 3},
    "features": {"export_boost": {"offset_c": 2}, "chip_mode": {"enabled": True, "threshold_c": 30},
                 "spike_watch": {"threshold_per_mwh": 300}, "spike_reserve": {"gate": [[300, 2]]}},
    "automations": [{"id": "peak", "when": [{"kind": "time_window", "start": "17:00", "end": "20:00"},
                                            {"kind": "soc_above", "soc_pct": 60}],
                     "then": [{"action": "force_discharge", "minutes": 30, "power_kw": 5}]}],
    "notifications": {"channels": [{"kind": "log", "name": "log"}]},
}


def seeds() -> list[dict[str, Any]]:
    demo = yaml.safe_load(DEFAULT_SITES_FILE.read_text())
    return [demo, {"sites": [RICH]}]


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into the document (mapping keys and list indices)."""
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append((*prefix, k))
            out += paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.append((*prefix, i))
            out += paths(v, (*prefix, i))
    return out


def parent(doc: Any, path: tuple) -> Any:
    for p in path[:-1]:
        doc = doc[p]
    return doc


@st.composite
def edited(draw: st.DrawFn) -> tuple[str, list[tuple[tuple, Any]]]:
    import copy

    doc = copy.deepcopy(draw(st.sampled_from(seeds())))
    planted: list[tuple[tuple, Any]] = []
    for _ in range(draw(st.integers(1, 3))):
        all_paths = paths(doc)
        if not all_paths:
            break
        path = draw(st.sampled_from(all_paths))
        op = draw(st.sampled_from(["junk", "junk", "delete", "unknown"]))
        holder = parent(doc, path)
        if op == "junk":
            value = draw(st.one_of(st.sampled_from(JUNK), st.floats(allow_nan=True), st.text(max_size=5)))
            holder[path[-1]] = value
            planted.append((path, value))
        elif op == "delete":
            del holder[path[-1]]
        elif isinstance(holder, dict):
            holder[draw(st.sampled_from(["colour", "capacity", "kw", "tz"]))] = 1
    text = yaml.safe_dump(doc, sort_keys=False)
    cut = draw(st.sampled_from(["none", "none", "dup", "truncate"]))
    if cut == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    elif cut == "dup":
        lines = text.splitlines()
        keyed = [i for i, line in enumerate(lines) if ":" in line and not line.strip().startswith("-")]
        if keyed:
            i = draw(st.sampled_from(keyed))
            lines.insert(i + 1, lines[i])
            text = "\n".join(lines) + "\n"
    return text, planted


@FUZZ
@given(case=edited())
def test_any_edit_loads_or_is_refused_with_a_site_config_error(tmp_path_factory, case):
    text, planted = case
    f = tmp_path_factory.mktemp("sites") / "sites.yaml"
    f.write_text(text)
    try:
        sites = load_sites(f)
    except SiteConfigError as exc:
        assert str(exc).strip()
        return
    dumped = [s.model_dump() for s in sites.sites]
    for path, value in planted:  # whatever was planted and accepted is not a bool or NaN read as a number
        node: Any = {"sites": dumped}
        try:
            for p in path:
                node = node[p]
        except (KeyError, IndexError, TypeError):
            continue
        if isinstance(value, bool):
            assert isinstance(node, bool) or node is None or not isinstance(node, int | float), (path, node)
        if isinstance(node, float):
            assert math.isfinite(node), (path, node)


scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**9, 10**9), st.text(max_size=12),
                    st.floats(allow_nan=False, allow_infinity=True))
documents = st.recursive(scalars, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                        st.dictionaries(st.text(max_size=6), kids, max_size=4)),
                         max_leaves=20)


@FUZZ
@given(doc=documents, flow=st.booleans())
def test_yaml_reader_reads_what_safe_load_reads(doc, flow):
    text = yaml.safe_dump(doc, default_flow_style=flow)
    assert load_yaml(text) == yaml.safe_load(text)
