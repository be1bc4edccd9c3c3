"""The instance's dagster.yaml puts Dagster's runs, event log and schedules in PostgreSQL exactly when
``POWERSYNC_DATABASE_URL`` is a postgresql:// URL, without ever writing the URL (or its password) into the file."""

from __future__ import annotations

import os

import dagster as dg
import yaml

from powersync_pipelines.paths import (
    DAGSTER_PG_URL_ENV,
    REPO_ROOT,
    ensure_dagster_home,
    write_instance_config,
)


def test_no_url_keeps_the_repo_config_and_sqlite(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dh"))
    home = ensure_dagster_home()
    assert (home / "dagster.yaml").read_text() == (REPO_ROOT / "dagster.yaml").read_text()


def test_a_postgres_url_adds_postgres_storage_read_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dh"))
    monkeypatch.delenv(DAGSTER_PG_URL_ENV, raising=False)
    ensure_dagster_home()  # first prepared without PostgreSQL
    monkeypatch.setenv("POWERSYNC_DATABASE_URL", "postgresql://ps:s3cret@db.example:5432/powersync")
    home = ensure_dagster_home()  # the same home, now with the URL set: the generated file follows
    text = (home / "dagster.yaml").read_text()
    cfg = yaml.safe_load(text)
    assert cfg["storage"] == {"postgres": {"postgres_url": {"env": DAGSTER_PG_URL_ENV}}}
    assert "s3cret" not in text and "db.example" not in text
    assert os.environ[DAGSTER_PG_URL_ENV] == "postgresql+psycopg2://ps:s3cret@db.example:5432/powersync"
    assert cfg["concurrency"] == yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())["concurrency"]
    monkeypatch.delenv("POWERSYNC_DATABASE_URL")
    ensure_dagster_home()  # cleared again: back to the repo's file
    assert "storage" not in yaml.safe_load((home / "dagster.yaml").read_text())


def test_a_hand_edited_instance_config_is_left_alone(tmp_path, monkeypatch):
    home = tmp_path / "dh"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("POWERSYNC_DATABASE_URL", "postgresql://ps@localhost/powersync")
    write_instance_config(home)
    assert (home / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"
    write_instance_config(home, force=True)  # what `make env` does
    assert "postgres_url" in (home / "dagster.yaml").read_text()


def test_dagster_opens_its_storage_in_the_postgres_database(tmp_path, monkeypatch, pg_url):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dh"))
    monkeypatch.setenv("POWERSYNC_DATABASE_URL", pg_url)
    ensure_dagster_home()
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
