"""Per-site EV settings and the power sharing's hysteresis that outlive a process, and the ``ev_status`` JSON.

The settings a service call sets (``ev_set_mode``) are stored in ``ev_site_settings``; what is not set falls
back to the site's ``ev.default_session``. ``ev_status`` answers "what is the car doing": the charger and
whether it is connected, the running session and the energy delivered, the mode and the current limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..config import SiteConfig
from ..config.ev import EV_MODES, EvConfig, check_hhmm
from ..storage import HistoryStore
from .chargers.base import ChargerStatus
from .sharing import SharingState


class EvSettingsError(ValueError):
    """A setting that cannot be stored (one line, names the field)."""


@dataclass(frozen=True)
class EvSettings:
    mode: str
    departure: str | None  # local HH:MM
    target_kwh: float | None
    source: str  # stored | default

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "departure": self.departure, "target_kwh": self.target_kwh, "source": self.source}


def save_settings(store: HistoryStore, site_id: str, mode: str, departure: str | None = None,
                  target_kwh: float | None = None, now: pd.Timestamp | None = None) -> EvSettings:
    """Persist the site's mode (and optionally departure / target); values not given keep their stored ones."""
    if mode not in EV_MODES:
        raise EvSettingsError(f"mode must be one of {', '.join(EV_MODES)}, got {mode!r}")
    if departure is not None:
        try:
            check_hhmm(departure)
        except ValueError as exc:
            raise EvSettingsError(f"departure: {exc}") from None
    if target_kwh is not None and not (isinstance(target_kwh, int | float) and math.isfinite(target_kwh) and 0 < target_kwh <= 200):
        raise EvSettingsError(f"target_kwh must be a number in (0, 200], got {target_kwh!r}")
    old = _stored(store, site_id)
    dep = departure if departure is not None else (old or {}).get("departure")
    tgt = target_kwh if target_kwh is not None else (old or {}).get("target_kwh")
    row = pd.DataFrame([{"site_id": site_id, "mode": mode, "departure": dep, "target_kwh": tgt,
                         "updated_at": now or pd.Timestamp.now(tz="UTC")}])
    store.upsert("ev_site_settings", row, ["site_id"])
    return EvSettings(mode, dep, None if tgt is None else float(tgt), "stored")


def _stored(store: HistoryStore, site_id: str) -> dict[str, Any] | None:
    df = store.query("SELECT mode, departure, target_kwh FROM ev_site_settings WHERE site_id = ?", [site_id])
    if df.empty:
        return None
    r = df.iloc[0].to_dict()
    if r["target_kwh"] is not None and isinstance(r["target_kwh"], float) and math.isnan(r["target_kwh"]):
        r["target_kwh"] = None
    return r


def load_settings(store: HistoryStore, site_id: str, cfg: EvConfig) -> EvSettings:
    """Stored settings over the site's default session."""
    d = cfg.default_session
    s = _stored(store, site_id)
    if s is None:
        return EvSettings(d.mode if d else "cost_optimized", d.departure if d else None,
                          d.target_kwh if d else None, "default")
    return EvSettings(s["mode"], s["departure"] or (d.departure if d else None),
                      s["target_kwh"] if s["target_kwh"] is not None else (d.target_kwh if d else None), "stored")


# A stored sharing state older than this is ignored: the charger has since been told or done other things.
SHARING_STATE_MAX_AGE = pd.Timedelta(minutes=30)


def charger_key(cfg: EvConfig) -> str:
    """The charger's identity for per-charger state: kind, its id (OCPP identity, cloud id or host), connector."""
    ident = cfg.charge_point_id or cfg.charger_id or cfg.host or ""
    return f"{cfg.charger}:{ident}:{cfg.connector_id}"


def load_sharing_state(store: HistoryStore, site_id: str, cfg: EvConfig, now: pd.Timestamp) -> SharingState | None:
    """The power sharing's last state for this charger; None when none is stored or it is older than
    ``SHARING_STATE_MAX_AGE`` before ``now`` (the cycle then starts from what the charger reports)."""
    df = store.query("SELECT amps, paused_cycles, updated_at FROM ev_sharing_state WHERE site_id = ? AND charger = ?",
                     [site_id, charger_key(cfg)])
    if df.empty:
        return None
    r = df.iloc[0]
    if pd.Timestamp(now) - pd.Timestamp(r["updated_at"]).tz_convert("UTC") > SHARING_STATE_MAX_AGE:
        return None
    return SharingState(int(r["amps"]), int(r["paused_cycles"]))


def save_sharing_state(store: HistoryStore, site_id: str, cfg: EvConfig, state: SharingState, reason: str,
                       now: pd.Timestamp) -> None:
    """Keep what the charger was just told, for the next cycle in this or any later process."""
    row = pd.DataFrame([{"site_id": site_id, "charger": charger_key(cfg), "amps": int(state.amps),
                         "paused_cycles": int(min(state.paused_cycles, 2**31 - 1)), "reason": reason,
                         "updated_at": pd.Timestamp(now)}])
    store.upsert("ev_sharing_state", row, ["site_id", "charger"])


def ev_status(store: HistoryStore, site: SiteConfig, charger_status: ChargerStatus | None = None) -> dict[str, Any]:
    """The ``ev_status`` JSON for one site. OCPP chargers are read from what the central system stored; cloud
    and local chargers from ``charger_status`` (their ``read_status()``), when given."""
    cfg = site.ev
    if cfg is None:
        return {"site_id": site.id, "chargers": [], "session": None, "mode": None, "current_limit": None,
                "energy_delivered_kwh": None}
    settings = load_settings(store, site.id, cfg)
    charger: dict[str, Any] = {"kind": cfg.charger, "charge_point_id": cfg.charge_point_id, "max_amps": cfg.max_amps,
                               "min_amps": cfg.min_amps, "phases": cfg.phases, "voltage": cfg.voltage}
    session = None
    limit = None
    if cfg.charger == "ocpp":
        cp = store.query("SELECT connected, last_seen, vendor, model FROM ocpp_charge_points WHERE charge_point_id = ?",
                         [cfg.charge_point_id])
        st = store.query("SELECT status FROM ocpp_connector_status WHERE charge_point_id = ? AND connector_id = ?",
                         [cfg.charge_point_id, cfg.connector_id])
        charger["connected"] = bool(cp.iloc[0]["connected"]) if len(cp) else False
        charger["last_seen"] = str(cp.iloc[0]["last_seen"]) if len(cp) else None
        charger["status"] = str(st.iloc[0, 0]) if len(st) else None
        tx = store.query("SELECT transaction_id, started_at, status, energy_kwh FROM ev_session_energy "
                         "WHERE charge_point_id = ? ORDER BY started_at DESC LIMIT 1", [cfg.charge_point_id])
        if len(tx) and tx.iloc[0]["status"] == "active":
            session = {"transaction_id": int(tx.iloc[0]["transaction_id"]), "started_at": str(tx.iloc[0]["started_at"]),
                       "energy_kwh": round(float(tx.iloc[0]["energy_kwh"]), 4)}
        sp = store.query("SELECT limit_value, unit, sent_value, status, outcome, requested_at FROM ev_setpoints "
                         "WHERE charge_point_id = ? AND command = 'limit' ORDER BY requested_at DESC LIMIT 1",
                         [cfg.charge_point_id])
        if len(sp):
            r = sp.iloc[0]
            limit = {"value": _num(r["sent_value"]) if _num(r["sent_value"]) is not None else _num(r["limit_value"]),
                     "unit": r["unit"], "status": r["status"], "outcome": r["outcome"], "requested_at": str(r["requested_at"])}
    elif charger_status is not None:
        charger.update({"connected": True, "status": charger_status.state, "car_connected": charger_status.car_connected})
        if charger_status.car_connected:
            session = {"energy_kwh": charger_status.session_energy_kwh, "power_kw": charger_status.power_kw}
        if charger_status.current_limit_a is not None:
            limit = {"value": charger_status.current_limit_a, "unit": "A", "status": "reported"}
    return {"site_id": site.id, "chargers": [charger], "session": session, "mode": settings.mode,
            "departure": settings.departure, "target_kwh": settings.target_kwh, "settings_source": settings.source,
            "current_limit": limit, "energy_delivered_kwh": None if session is None else session.get("energy_kwh")}


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f
