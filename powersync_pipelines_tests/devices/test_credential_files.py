"""Credential files: owner-only (0600 in a 0700 folder under $POWERSYNC_HOME), replaced atomically, a
world-readable one tightened on read, a corrupt one treated as no log-in, and names that cannot escape."""

from __future__ import annotations

import stat

import pytest

from powersync_pipelines.devices.credentials import CredentialFile, fingerprint
from powersync_pipelines.paths import powersync_home


def mode(p) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_written_owner_only_under_powersync_home():
    f = CredentialFile("tesla_TESLA_REFRESH")
    f.write({"refresh_token": "rt-1"})
    assert f.path.parent == powersync_home() / "credentials"
    assert mode(f.path) == 0o600 and mode(f.path.parent) == 0o700
    f.write({"refresh_token": "rt-2"})
    assert f.read() == {"refresh_token": "rt-2"}
    assert [p.name for p in f.path.parent.iterdir() if p.suffix == ".tmp"] == []  # no temporary left behind


def test_a_world_readable_file_is_tightened_and_a_corrupt_one_starts_afresh(caplog):
    f = CredentialFile("sigenergy_abc")
    f.write({"access_token": "secret-access"})
    f.path.chmod(0o644)
    assert f.read() == {"access_token": "secret-access"} and mode(f.path) == 0o600
    f.path.write_text("{not json")
    assert f.read() == {}
    assert "secret-access" not in caplog.text and repr(f) == f"CredentialFile({str(f.path)!r})"


@pytest.mark.parametrize("name", ["../escape", "a/b", "", ".hidden"])
def test_names_cannot_leave_the_credentials_folder(name):
    with pytest.raises(ValueError, match="credential name"):
        CredentialFile(name)


def test_fingerprints_tell_secrets_apart_without_revealing_them():
    a, b = fingerprint("key-one"), fingerprint("key-two")
    assert a != b and len(a) == 16 and "key" not in a
