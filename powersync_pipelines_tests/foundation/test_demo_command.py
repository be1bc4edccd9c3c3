"""`powersync demo` (what `make demo` runs) works from a bare POWERSYNC_HOME, prints the summary, and a
second run updates the same rows."""

from __future__ import annotations

import os
import subprocess
import sys

from powersync_pipelines.paths import REPO_ROOT
from powersync_pipelines.storage import HistoryStore


def _demo(home) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "POWERSYNC_SITES")}
    env["POWERSYNC_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "powersync_pipelines.cli", "demo"], capture_output=True,
                          text=True, env=env, cwd=REPO_ROOT, timeout=300)


def test_demo_runs_twice_and_prints_what_a_person_needs(tmp_path):
    first = _demo(tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    out = first.stdout
    assert "plan demo:20240212T2000Z: optimal via lp" in out
    assert "without a battery" in out and "next 6 hours" in out
    assert "earns $" in out and "$-" not in out  # a negative cost is said in words
    assert "import $/kWh" in out and "battery kW (+charge)" in out
    assert "what the battery was told:" in out
    assert "discharge into the house and the grid at 5.00 kW: done, confirmed by reading it back" in out
    assert "registers written" not in out and "13051:" not in out  # raw registers only with --registers
    assert f"DuckDB history: {tmp_path / 'powersync.duckdb'}" in out
    assert (tmp_path / "dagster" / "dagster.yaml").exists()
    store = HistoryStore(tmp_path / "powersync.duckdb")
    counts = {t: store.query(f"SELECT count(*) n FROM {t}")["n"].iloc[0] for t in ("prices", "plans", "schedule")}
    assert _demo(tmp_path).returncode == 0
    assert {t: store.query(f"SELECT count(*) n FROM {t}")["n"].iloc[0] for t in counts} == counts
