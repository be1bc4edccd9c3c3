"""How long and how much memory validating a large sites file takes (an installer's fleet file).

Generates ``N`` sites (default 10,000) of every provider and battery kind, with features, automations and
notification channels, writes them as one YAML file, and runs ``load_sites`` on it in a fresh subprocess so the
peak RSS is the loader's alone. Writes ``results/sites_validation.json``.

    python -m benchmarks.bench_sites_validation [N]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import RESULTS_DIR, machine
from powersync_pipelines.paths import DATA_DIR

REGIONS = ("NSW1", "QLD1", "VIC1", "SA1", "TAS1")
TZS = {"NSW1": "Australia/Sydney", "QLD1": "Australia/Brisbane", "VIC1": "Australia/Melbourne",
       "SA1": "Australia/Adelaide", "TAS1": "Australia/Hobart"}


def site(i: int) -> dict[str, Any]:
    """Site ``i`` of a fleet: every fifth kind of provider and third kind of battery, unique device addresses."""
    region = REGIONS[i % len(REGIONS)]
    kind = ("replay", "amber", "aemo", "flow_power", "octopus")[i % 5]
    s: dict[str, Any] = {"id": f"site-{i:05d}", "timezone": TZS[region], "country": "AU"}
    if kind == "replay":
        s["provider"] = {"kind": "replay", "region": "VIC1", "format": "aemo", "replay_start": "2024-02-12T20:00:00Z",
                         "file": str(DATA_DIR / "prices" / "PRICE_AND_DEMAND_202402_VIC1_excerpt.csv")}
    elif kind == "amber":
        s["provider"] = {"kind": "amber", "token_env": f"AMBER_TOKEN_{i}", "site_id": f"01H{i:08d}"}
    elif kind == "octopus":
        s.update(timezone="Europe/London", country="UK")
        s["provider"] = {"kind": "octopus", "gsp": "ABCDEFGHJKLMNP"[i % 14], "product": "agile",
                         "export_product": "agile_outgoing"}
    else:
        s["provider"] = {"kind": kind, "region": region,
                         "network_tariff": [{"start": "00:00", "end": "16:00", "import_price": 0.08},
                                            {"start": "16:00", "end": "21:00", "import_price": 0.25},
                                            {"start": "21:00", "end": "00:00", "import_price": 0.08}]}
    battery = ("sungrow_sh", "sigenergy", "tesla")[i % 3]
    b: dict[str, Any] = {"kind": battery, "capacity_kwh": 13.5, "max_charge_kw": 5.0, "max_discharge_kw": 5.0,
                         "backup_reserve_pct": 10, "optimizer_reserve_pct": 20}
    if battery == "tesla":
        b.update(token_env=f"TESLA_TOKEN_{i}", energy_site_id=str(100000 + i))
    else:
        b.update(host=f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}", port=502,
                 device_id=247 if battery == "sigenergy" else 1)
    s["battery"] = b
    s["solar"] = {"peak_kw": 6.6, "tilt": 20, "azimuth": 0}
    s["load"] = {"profile": str(DATA_DIR / "profiles" / "ausgrid_customer12.csv")}
    s["features"] = {"export_boost": {"enabled": True, "offset_c": 2.0},
                     "chip_mode": {"enabled": i % 2 == 0}, "spike_watch": {"threshold_per_mwh": 300}}
    s["automations"] = [{"id": "evening-export", "when": [{"kind": "time_window", "start": "17:00", "end": "20:00"},
                                                          {"kind": "soc_above", "soc_pct": 60}],
                         "then": [{"action": "force_discharge", "minutes": 30}]}]
    s["notifications"] = {"channels": [{"kind": "log", "name": "log"},
                                       {"kind": "ntfy", "name": "phone", "url": "https://ntfy.example",
                                        "topic": f"home{i}"}]}
    return s


def write_fleet(path: Path, n: int) -> Path:
    path.write_text(yaml.safe_dump({"sites": [site(i) for i in range(n)]}, sort_keys=False))
    return path


# Peak RSS from VmHWM: a fresh address space's own high-water mark (ru_maxrss survives fork+exec, so it would
# report the parent's memory, which holds the generated fleet).
MEASURE = """
import json, sys, time
def hwm_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
t0 = time.perf_counter()
from powersync_pipelines.config import load_sites
t1 = time.perf_counter()
before = hwm_mb()
sites = load_sites(sys.argv[1])
t2 = time.perf_counter()
print(json.dumps({"sites": len(sites.sites), "import_s": t1 - t0, "validate_s": t2 - t1,
                  "rss_after_import_mb": before, "peak_rss_mb": hwm_mb()}))
"""


def measure(path: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(n: int | None = None) -> dict[str, Any]:
    n = n or (int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 10_000)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = write_fleet(Path(tmp) / "fleet.yaml", n)
        written = time.perf_counter() - t0
        size_mb = path.stat().st_size / 1e6
        runs = [measure(path) for _ in range(2)]
    best = min(runs, key=lambda r: r["validate_s"])
    result = {"sites": n, "file_mb": round(size_mb, 2), "generate_s": round(written, 2),
              "validate_s": round(best["validate_s"], 3), "per_site_ms": round(best["validate_s"] / n * 1000, 4),
              "peak_rss_mb": round(best["peak_rss_mb"], 1), "import_s": round(best["import_s"], 3),
              "runs": runs, "machine": machine()}
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "sites_validation.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"{n} sites ({size_mb:.1f} MB): validated in {result['validate_s']} s "
          f"({result['per_site_ms']} ms/site), peak RSS {result['peak_rss_mb']} MB")
    return result


if __name__ == "__main__":
    main()
