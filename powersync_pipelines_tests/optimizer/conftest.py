"""Optimizer test fixtures: both cores saturated by busy processes (``busy_cpus``).

``POWERSYNC_CPU_LOAD=1 pytest powersync_pipelines_tests/optimizer`` runs the whole folder with every core
busy; ``make test`` runs the representative ``cpu_load`` subset (``test_plans_under_cpu_load.py``).
"""

from __future__ import annotations

import os

import pytest

from powersync_pipelines_tests.cpu_load import busy_cores


@pytest.fixture(scope="session", autouse=os.environ.get("POWERSYNC_CPU_LOAD") == "1")
def _whole_folder_under_load():
    with busy_cores() as procs:
        yield procs


@pytest.fixture
def busy_cpus():
    """Every core spinning for the duration of one test."""
    with busy_cores() as procs:
        yield procs
