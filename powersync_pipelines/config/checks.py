"""Sites-file mistakes that no single section can see, caught when the file loads (issue 33).

* Two sections driving one device: a battery and an AC inverter on the same host + port + Modbus unit (the
  Sungrow SH battery and SG inverter answer on the same address with the same defaults), or two sites naming
  the same battery, inverter or Tesla energy site. Two writers on one device fight each other every cycle.
* A Tesla battery without ``token_env``: nothing could ever be read or sent.
* Files that do not exist: the price file of a replay/normalised provider (or any provider's saved payload)
  and the load profile. Found now, not at the first planning run at 3 am.

Each problem is one line naming the site(s) and section(s). Paths resolve as the planner resolves them
(``paths.resolve_data_path``), and each distinct path is looked up once (a fleet file names the same few files).
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import TYPE_CHECKING

from ..paths import resolve_data_path

if TYPE_CHECKING:
    from .sites import SiteConfig

# Defaults the drivers use when port / unit id are not given (devices/*: keep in step).
BATTERY_DEFAULTS: dict[str, tuple[int, int]] = {"sungrow_sh": (502, 1), "sigenergy": (502, 247)}
INVERTER_DEFAULTS: dict[str, tuple[int, int | None]] = {
    "sungrow_sg": (502, 1), "fronius": (502, 1), "goodwe": (502, 247), "huawei": (502, 1),
    "enphase": (443, None), "zeversolar": (80, None),
}


def _endpoints(site: SiteConfig) -> list[tuple[tuple[object, ...], str]]:
    """(device identity, section) for every device the site writes to."""
    out: list[tuple[tuple[object, ...], str]] = []
    b = site.battery
    if b.kind in BATTERY_DEFAULTS and b.host:
        port, unit = BATTERY_DEFAULTS[b.kind]
        out.append((("modbus", b.host.strip().lower(), b.port or port, b.device_id if b.device_id is not None else unit),
                    f"battery ({b.kind})"))
    elif b.kind == "tesla" and b.energy_site_id:
        out.append((("tesla", str(b.energy_site_id)), "battery (tesla)"))
    inv = site.ac_inverter
    if inv is not None:
        port, unit = INVERTER_DEFAULTS[inv.brand]
        kind = "modbus" if unit is not None else "http"
        out.append(((kind, inv.host.strip().lower(), inv.port or port, inv.device_id if inv.device_id is not None else unit),
                    f"ac_inverter ({inv.brand})"))
    return out


def _describe(key: tuple[object, ...]) -> str:
    if key[0] == "tesla":
        return f"Tesla energy site {key[1]}"
    unit = f" unit {key[3]}" if key[0] == "modbus" else ""
    return f"{key[1]}:{key[2]}{unit}"


def device_clashes(sites: list[SiteConfig]) -> list[str]:
    """One line per device that more than one section (of one site or of several) would drive."""
    owners: dict[tuple[object, ...], list[str]] = {}
    for site in sites:
        for key, section in _endpoints(site):
            owners.setdefault(key, []).append(f"site {site.id!r} {section}")
    problems = []
    for key, names in owners.items():
        if len(names) > 1:
            problems.append(f"{' and '.join(names)} drive the same device {_describe(key)}: give each its own "
                            "host/port/device_id (one writer per device)")
    return problems


def _exists(path: str, base: str | None, pattern: bool, seen: dict[tuple[str, str | None], bool]) -> bool:
    key = (path, base)
    if key not in seen:
        seen[key] = _lookup(path, base, pattern)
    return seen[key]


def _lookup(path: str, base: str | None, pattern: bool) -> bool:
    if pattern:
        root = Path(base) if base and not Path(path).is_absolute() else None
        return bool(glob.glob(str(root / path) if root else path))
    return resolve_data_path(path, Path(base) if base else None).exists()


def missing_files(site: SiteConfig, seen: dict[tuple[str, str | None], bool] | None = None) -> list[str]:
    """One line per file the site names that is not there (``seen`` shares look-ups across a file's sites)."""
    seen = {} if seen is None else seen
    problems = []
    prov = site.provider
    if prov.file:
        pattern = any(ch in prov.file for ch in "*?[")
        if not _exists(prov.file, site.base_dir, pattern, seen):
            problems.append(f"site {site.id!r}: provider.file: {prov.file} does not exist"
                            + (f" (looked in {site.base_dir} and the repository)" if site.base_dir else ""))
    if not _exists(site.load.profile, site.base_dir, False, seen):
        problems.append(f"site {site.id!r}: load.profile: {site.load.profile} does not exist")
    return problems


def site_problems(site: SiteConfig, seen: dict[tuple[str, str | None], bool] | None = None) -> list[str]:
    """What one site alone gets wrong beyond its sections' own types."""
    problems = missing_files(site, seen)
    b = site.battery
    if b.kind == "tesla" and not b.token_env and not b.refresh_token_env:
        problems.append(f"site {site.id!r}: battery.token_env: a Tesla battery needs the name of the environment "
                        "variable holding its Fleet API / Teslemetry token (or refresh_token_env with "
                        "oauth_client_id for the Fleet API refresh flow)")
    return problems


def cross_check(sites: list[SiteConfig]) -> list[str]:
    """Every loader-level problem of the file, in site order, device clashes last."""
    seen: dict[tuple[str, str | None], bool] = {}
    problems = [p for site in sites for p in site_problems(site, seen)]
    return problems + device_clashes(sites)
