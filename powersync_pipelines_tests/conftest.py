"""Shared fixtures: every test gets its own POWERSYNC_HOME so nothing touches ./var."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from powersync_pipelines.config import load_sites
from powersync_pipelines.control.context import ControlContext
from powersync_pipelines.paths import shared_real_data
from powersync_pipelines.storage import HistoryStore

from .pg_cluster import TEMPLATE_DB, Cluster, server_bin_dir

# Hypothesis profiles. "dev" (local default) searches at random on every run, so property tests keep finding
# new examples (stop 21's burn-repair bug came from one); "ci" derandomises the search, so a CI verdict on a
# change depends on the change and not on a fresh random draw; failing examples are still printed with a
# reproduction blob. Chosen by HYPOTHESIS_PROFILE, else "ci" when CI is set (`.ci/run` sets it).
settings.register_profile("dev")
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("POWERSYNC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("POWERSYNC_SITES", raising=False)
    monkeypatch.delenv("POWERSYNC_DUCKDB", raising=False)
    monkeypatch.delenv("POWERSYNC_FIXED_NOW", raising=False)
    monkeypatch.delenv("POWERSYNC_ENDPOINTS", raising=False)
    monkeypatch.delenv("POWERSYNC_DATABASE_URL", raising=False)


@pytest.fixture
def store(request, tmp_path) -> HistoryStore:
    """The test's history store: a DuckDB file, or a fresh PostgreSQL database when
    ``POWERSYNC_TEST_BACKEND=postgresql`` (runs any test area against PostgreSQL)."""
    if os.environ.get("POWERSYNC_TEST_BACKEND") == "postgresql":
        return HistoryStore(request.getfixturevalue("pg_url"))
    return HistoryStore(tmp_path / "history.duckdb")


@pytest.fixture(scope="session")
def pg_cluster():
    """A throw-away PostgreSQL cluster for the session, with a template database already migrated."""
    bin_dir = server_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed: apt-get install postgresql")
    cluster = Cluster(bin_dir).start()
    try:
        cluster.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
        HistoryStore(cluster.url(TEMPLATE_DB)).migrate()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster):
    """The URL of a fresh, migrated PostgreSQL database for this test only."""
    with pg_cluster.database() as url:
        yield url


@pytest.fixture(params=["duckdb", "postgresql"])
def any_store(request, tmp_path) -> HistoryStore:
    """The history store on each backend in turn; a module opts in with ``store = any_store``-style override."""
    if request.param == "duckdb":
        return HistoryStore(tmp_path / "history.duckdb")
    return HistoryStore(request.getfixturevalue("pg_url"))


@pytest.fixture
def ctx(store) -> ControlContext:
    """The control layer's context (arbiter, clock, devices) on the test's store."""
    return ControlContext(store)


@pytest.fixture
def demo_site():
    return load_sites().get("demo")


@pytest.fixture
def real_data():
    """``../shared/data/real`` or skip (CI has it; a bare clone may not)."""
    root = shared_real_data()
    if root is None:
        pytest.skip("../shared/data/real is not present on this machine")
    return root


def lapse_holds(store: HistoryStore, site_id: str) -> None:
    """Let the site's leases run out (as if their time had passed): the restore watch's input."""
    with store.connect() as con:
        con.execute("UPDATE control_ledger SET lease_until = now() - INTERVAL '1 second' "
                    "WHERE site_id = ? AND status = 'held' AND lease_until IS NOT NULL", [site_id])
