"""The shipped Kubernetes deployment files are usable as they are: the Helm values parse and name the code
location that exists, and the image's entrypoint command is one the image installs and runs this project."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import yaml

from powersync_pipelines.paths import REPO_ROOT

DOCKERFILE = REPO_ROOT / "deploy" / "Dockerfile"
VALUES = REPO_ROOT / "deploy" / "helm" / "values.yaml"


def _instruction(name: str) -> list[str]:
    """The JSON (exec) form of a Dockerfile instruction."""
    line = next(ln for ln in DOCKERFILE.read_text().splitlines() if ln.startswith(name + " "))
    return json.loads(line[len(name) + 1:])


def test_the_image_entrypoint_is_the_dagster_cli_serving_this_code_location():
    entry, cmd = _instruction("ENTRYPOINT"), _instruction("CMD")
    assert entry == ["dagster"]
    # the image gets its console scripts from `uv sync --frozen --no-dev`, as this venv did
    assert shutil.which(entry[0], path=str(Path(sys.executable).parent)) is not None
    assert cmd[:2] == ["api", "grpc"]
    module = cmd[cmd.index("-m") + 1]
    assert importlib.util.find_spec(module) is not None
    assert module == yaml.safe_load((REPO_ROOT / "workspace.yaml").read_text())["load_from"][0]["python_module"][
        "module_name"]


def test_the_image_copies_files_that_exist_and_installs_the_locked_dependencies_without_dev():
    text = DOCKERFILE.read_text()
    for line in text.splitlines():
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert (REPO_ROOT / src).exists(), src
    assert "uv sync --frozen --no-dev" in text
    assert re.search(r"^FROM python:3\.11", text, re.M)


def test_the_helm_values_parse_and_point_at_the_image_and_postgres():
    values = yaml.safe_load(VALUES.read_text())
    (dep,) = values["dagster-user-deployments"]["deployments"]
    assert dep["dagsterApiGrpcArgs"] == ["-m", _instruction("CMD")[-1]]
    assert dep["port"] == 3030 and {"name": "powersync-env"} in dep["envSecrets"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"] == [{"name": "powersync-env"}]
    assert values["postgresql"]["enabled"] is False and values["postgresql"]["postgresqlHost"]
    daemon = values["dagsterDaemon"]
    assert daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert daemon["runMonitoring"]["freeSlotsAfterRunEndSeconds"] > 0  # pools never deadlock on a dead run
    assert daemon["runMonitoring"]["maxResumeRunAttempts"] == 0
