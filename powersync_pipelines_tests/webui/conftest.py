"""One demo run (a real Dagster run, DuckDB history and DAGSTER_HOME on a temp POWERSYNC_HOME) shared by the
page tests: they only read it, apart from the writer test's rows of a site no page shows."""

from __future__ import annotations

import pytest

from .servers import run_demo


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    run_demo(home)
    return home
