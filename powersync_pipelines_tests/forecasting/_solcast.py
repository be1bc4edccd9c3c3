"""Helpers for the Solcast tests: the real rooftop response (../shared, never copied), a site pointing at a
loopback peer that serves it, and the planning instant that response was issued for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from powersync_pipelines.config import SiteConfig, parse_sites
from powersync_pipelines_tests.prices.conftest import LoopbackServer

RESOURCE = "abcd-1234-ef56-7890"
KEY_ENV = "SOLCAST_TEST_KEY"
KEY = "sk-solcast-test-SECRET-7f3a"
# The response's first period ends 17:30Z, so it was issued during the 17:00-17:30 period.
ISSUED = pd.Timestamp("2024-12-26T17:10Z")
JSON = {"Content-Type": "application/json"}


def real_response(root: Path) -> bytes:
    return (root / "solcast/emhass/test_response_solcast_multiday.json").read_bytes()


def real_items(root: Path) -> list[dict[str, Any]]:
    return json.loads(real_response(root))["forecasts"]


def solcast_site_doc(base_url: str | None, resource_id: str = RESOURCE, **solar: Any) -> dict[str, Any]:
    """A sites document with one site in France (where the real response comes from: sun 08:00-16:00 UTC in
    late December)."""
    return {"sites": [{
        "id": "roof", "timezone": "Europe/Paris", "country": "UK", "latitude": 45.76, "longitude": 4.84,
        "provider": {"kind": "aemo", "region": "VIC1"},
        "battery": {"kind": "simulated", "capacity_kwh": 10, "max_charge_kw": 5, "max_discharge_kw": 5},
        "solar": {"peak_kw": 1.5, "tilt": 35, "azimuth": 180, "solcast_resource_id": resource_id,
                  "solcast_token_env": KEY_ENV, **({"solcast_base_url": base_url} if base_url else {}), **solar},
    }]}


def solcast_site(base_url: str | None, resource_id: str = RESOURCE, **solar: Any) -> SiteConfig:
    return parse_sites(solcast_site_doc(base_url, resource_id, **solar)).sites[0]


def forecasts_path(resource_id: str = RESOURCE) -> str:
    return f"/rooftop_sites/{resource_id}/forecasts"


def solcast_peer() -> LoopbackServer:
    """A real HTTP server on 127.0.0.1 that tests script with Solcast's replies (a context manager)."""
    return LoopbackServer()


def response_moved_to(root: Path, now: pd.Timestamp) -> bytes:
    """The real response's shape and values, its periods moved so the first one holds ``now`` (for code that
    runs on the wall clock)."""
    body = json.loads(real_response(root))
    first_end = now.floor("30min") + pd.Timedelta(minutes=30)
    for k, item in enumerate(body["forecasts"]):
        item["period_end"] = (first_end + k * pd.Timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
    return json.dumps(body).encode()


def write_sites(path: Path, doc: dict[str, Any]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(doc))
    return path
