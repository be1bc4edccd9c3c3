# Every target bootstraps the environment itself: a fresh machine needs only Python 3.11, pip, make and git.
SHELL := /bin/bash
PYTHON ?= python3
export POWERSYNC_HOME ?= $(CURDIR)/var
export DAGSTER_HOME ?= $(POWERSYNC_HOME)/dagster
UV := $(PYTHON) -m uv
VENV := .venv
STAMP := $(VENV)/.synced

.PHONY: demo test ui screenshots bench reliability lint check-contracts clean env

$(STAMP): pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen --python $(PYTHON)
	@touch $(STAMP)

env: $(STAMP)
	@mkdir -p $(DAGSTER_HOME)
	@$(VENV)/bin/python -c "import pathlib, powersync_pipelines.paths as p; p.write_instance_config(pathlib.Path('$(DAGSTER_HOME)'), force=True)"

## make demo: run the main job once on the embedded demo site (simulated Sungrow SH on loopback)
demo: env
	$(VENV)/bin/powersync demo

## make test: lint, check the import layers, validate the Dagster definitions, run the test suite
test: env
	$(VENV)/bin/ruff check powersync_pipelines powersync_pipelines_tests benchmarks
	$(VENV)/bin/lint-imports
	$(VENV)/bin/dg check defs
	$(VENV)/bin/pytest

## make reliability: the full fault campaign against the simulated devices (minutes; not part of make test),
## then docs/reliability.md regenerated from a fresh campaign run
reliability: env
	$(VENV)/bin/pytest -m reliability
	$(VENV)/bin/python -m powersync_pipelines_tests.reliability.campaign --write

## make ui: Dagster UI + daemon with the demo site, the simulator and the 5-minute schedule running
ui: env
	$(VENV)/bin/powersync ui

## make screenshots: the homeowner's page and Dagster's battery_schedule page after a demo run, as PNGs in docs/img/
screenshots: env
	POWERSYNC_SCREENSHOTS=$(CURDIR)/docs/img $(VENV)/bin/pytest powersync_pipelines_tests/webui/test_pages_in_a_browser.py

## make bench: benchmarks, results written to benchmarks/results/
bench: env
	$(VENV)/bin/python -m benchmarks.run_all

lint: env
	$(VENV)/bin/ruff check powersync_pipelines powersync_pipelines_tests benchmarks

check-contracts: env
	$(VENV)/bin/python ../shared/tools/check_contracts.py

clean:
	rm -rf var .venv
