"""Tesla Powerwall via the Fleet API or Teslemetry (SPEC §7; reference/devices.md §3, behaviour.md §4.3).

The cloud offers no "charge at X kW": forced modes use the tariff the Powerwall optimises against, in
autonomous mode. Force charge = grid charging on, reserve 100 %, a window priced free to buy; force discharge =
export rule ``battery_ok``, grid charging off, a window with a very high sell price. IDLE = reserve at the
current SOC. Every write is read back from ``site_info``; several writes of one command share one read-back to
stay inside Teslemetry's 30 calls / 60 s. Signs converted once: ``battery_power`` + discharging,
``grid_power`` + importing.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import pandas as pd

from .base import (
    BatteryDevice,
    CommandResult,
    DeviceError,
    DeviceRejected,
    Telemetry,
    Unsupported,
    VerifyError,
    split_power,
)
from .credentials import CredentialFile
from .tesla_api import (
    AUTH_URL_ENV,
    FLEET_AUTH_TOKEN_URL,
    FLEET_NA,
    TESLEMETRY_CALLS_PER_MINUTE,
    FleetOAuthClient,
    TeslaClient,
    TeslaOAuth,
)
from .tesla_tariff import FORCE_CODE_PREFIX, window_tariff

OPERATION_MODES = ("self_consumption", "autonomous", "backup")
EXPORT_RULES = ("never", "pv_only", "battery_ok")
SITE_INFO_TTL_S = 60.0


class TeslaPowerwall(BatteryDevice):
    kind = "tesla"

    def __init__(self, site: Any, store: Any = None, arbitrated: bool = False) -> None:
        super().__init__(site, store, arbitrated)
        cfg = self.cfg
        self.base_url = cfg.base_url or os.environ.get("POWERSYNC_TESLA_BASE_URL") or FLEET_NA
        self.api = cfg.api or ("teslemetry" if "teslemetry" in self.base_url else "fleet")
        self._client: TeslaClient | None = None
        self._site_id: str | None = cfg.energy_site_id
        self._info: tuple[float, dict[str, Any]] | None = None

    # -- connection -------------------------------------------------------------------------------------
    @property
    def client(self) -> TeslaClient:
        if self._client is None and self.cfg.refresh_token_env:
            self._client = fleet_oauth_client(self.site, self.base_url)
        if self._client is None:
            env = self.cfg.token_env
            token = os.environ.get(env) if env else None
            if not token:
                raise DeviceError(f"site {self.site.id!r}: Tesla token missing: set battery.token_env to the name "
                                  f"of an environment variable holding the token"
                                  + (f" (variable {env} is not set)" if env else ""))
            limit = self.cfg.rate_limit_per_minute or (TESLEMETRY_CALLS_PER_MINUTE if self.api == "teslemetry" else None)
            self._client = TeslaClient(self.base_url, token, timeout_s=self.cfg.timeout_s,
                                       attempts=self.cfg.connect_attempts, backoff_base_s=self.cfg.backoff_base_s,
                                       rate_limit_per_minute=limit)
        return self._client

    @property
    def device_key(self) -> str:
        return f"tesla@{self.cfg.energy_site_id or self.site.id}"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def site_id(self) -> str:
        """The energy site id: configured, or discovered from ``/api/1/products`` (the first energy site)."""
        if self._site_id is None:
            sites = [p for p in self.client.products() if p.get("energy_site_id") is not None]
            if not sites:
                raise DeviceError(f"site {self.site.id!r}: the Tesla account has no energy site")
            self._site_id = str(sites[0]["energy_site_id"])
        return self._site_id

    def site_info(self, fresh: bool = True) -> dict[str, Any]:
        if fresh or self._info is None or time.monotonic() - self._info[0] > SITE_INFO_TTL_S:
            self._info = (time.monotonic(), self.client.site_info(self.site_id))
        return self._info[1]

    # -- telemetry --------------------------------------------------------------------------------------
    def _read_telemetry(self) -> Telemetry:
        live = self.client.live_status(self.site_id)
        info = self.site_info(fresh=False)
        where = f"Tesla live_status for site {self.site_id}"
        ts = _timestamp(live.get("timestamp"), where)
        soc_pct = _number(live, "percentage_charged", where)
        if soc_pct is None or not 0 <= soc_pct <= 100:
            raise DeviceRejected(f"{where}: percentage_charged is {live.get('percentage_charged')!r} "
                                 "(expected 0-100)")
        discharge, charge = split_power((_number(live, "battery_power", where) or 0.0) / 1000.0)
        imp, exp = split_power((_number(live, "grid_power", where) or 0.0) / 1000.0)
        load_w, solar_w = _number(live, "load_power", where), _number(live, "solar_power", where)
        return Telemetry(
            ts=ts, soc=soc_pct / 100.0, soh=_soh(live, info, where), battery_charge_kw=charge,
            battery_discharge_kw=discharge, grid_import_kw=imp, grid_export_kw=exp,
            load_kw=None if load_w is None else load_w / 1000.0,
            solar_kw=None if solar_w is None else solar_w / 1000.0,
            mode=str(info.get("default_real_mode", "unknown")),
            raw={**{k: live.get(k) for k in ("battery_power", "grid_power", "grid_status", "island_status",
                                              "storm_mode_active", "energy_left", "total_pack_energy")},
                 "reserve_pct": _number(info, "backup_reserve_percent", f"Tesla site_info for site {self.site_id}")},
        )

    # -- settings as site_info shows them ------------------------------------------------------------------
    @staticmethod
    def _settings(info: dict[str, Any]) -> dict[str, Any]:
        comp = info.get("components", {})
        tariff = info.get("tariff_content_v2")
        return {
            "operation_mode": info.get("default_real_mode"),
            "reserve_pct": info.get("backup_reserve_percent"),
            "export_rule": comp.get("customer_preferred_export_rule"),
            "grid_charging": not bool(comp.get("disallow_charge_from_grid_with_solar_installed", False)),
            "tariff": tariff,
        }

    def _verify(self, expected: dict[str, Any]) -> None:
        """One read-back of site_info for every setting just written."""
        now = self._settings(self.site_info(fresh=True))
        for key, want in expected.items():
            got = now[key]
            if key == "tariff":
                got = (got or {}).get("code")
                want = want.get("code") if isinstance(want, dict) else want
            self._read_back(key, got)
            if got != want:
                raise VerifyError(f"Tesla site {self.site_id}: {key} reads {got!r} after setting {want!r}")

    def _post(self, key: str, value: Any) -> None:
        sid = self.site_id
        self._wrote(key, value if key != "tariff" else {"code": value.get("code")})
        if key == "operation_mode":
            self.client.set_operation(sid, value)
        elif key == "reserve_pct":
            self.client.set_backup_reserve(sid, int(value))
        elif key == "export_rule":
            self.client.grid_import_export(sid, export_rule=value)
        elif key == "grid_charging":
            self.client.grid_import_export(sid, disallow_grid_charging=not value)
        elif key == "tariff":
            self.client.time_of_use_settings(sid, value)

    def _apply_settings(self, changes: dict[str, Any]) -> None:
        order = ("tariff", "export_rule", "grid_charging", "operation_mode", "reserve_pct")
        for key in order:
            if key in changes:
                self._post(key, changes[key])
        self._verify(changes)

    # -- snapshot / restore ----------------------------------------------------------------------------
    def _snapshot(self) -> dict[str, Any]:
        snap = self._settings(self.site_info(fresh=True))
        tariff = snap.get("tariff") or {}
        if str(tariff.get("code", "")).startswith(FORCE_CODE_PREFIX):
            snap["tariff"] = None  # never save our own force tariff as "the user's"
        return snap

    def _restore_snapshot(self, snap: dict[str, Any]) -> None:
        now = self._snapshot()
        changes = {k: v for k, v in snap.items() if v is not None and k != "tariff" and now.get(k) != v}
        saved_tariff = snap.get("tariff")
        current = self._settings(self.site_info(fresh=False)).get("tariff") or {}
        if saved_tariff and saved_tariff.get("code") != current.get("code"):
            changes["tariff"] = saved_tariff
        if changes:
            self._apply_settings(changes)

    # -- controls ---------------------------------------------------------------------------------------
    def _window(self) -> tuple[pd.Timestamp, pd.Timestamp, str]:
        start = pd.Timestamp.now(tz="UTC")
        end = self._until or start + pd.Timedelta(minutes=30)
        tz = self.site_info(fresh=False).get("installation_time_zone") or self.site.timezone
        return start, end, tz

    def _force(self, direction: str, power_kw: float) -> None:
        start, end, tz = self._window()
        currency = self.site.currency or "AUD"
        if direction == "charge":
            tariff = window_tariff(start, end, tz, buy_in=0.0, sell_in=0.0, buy_out=10.0, sell_out=0.0,
                                   code=f"{FORCE_CODE_PREFIX}_CHARGE", currency=currency)
            self._apply_settings({"tariff": tariff, "grid_charging": True, "operation_mode": "autonomous",
                                  "reserve_pct": 100})
        else:
            tariff = window_tariff(start, end, tz, buy_in=99.0, sell_in=99.0, buy_out=0.30, sell_out=0.08,
                                   code=f"{FORCE_CODE_PREFIX}_DISCHARGE", currency=currency)
            self._apply_settings({"tariff": tariff, "export_rule": "battery_ok", "grid_charging": False,
                                  "operation_mode": "autonomous"})

    def _idle(self, telemetry: Telemetry) -> None:
        self._apply_settings({"operation_mode": "self_consumption",
                              "reserve_pct": min(100, math.ceil(telemetry.soc * 100))})

    def _normal(self) -> None:
        self._apply_settings({"operation_mode": "self_consumption"})

    def _set_reserve(self, pct: float) -> None:
        value = int(round(pct))
        for attempt in range(3):  # the gateway sometimes confirms before it applies: post again
            self._post("reserve_pct", value)
            try:
                self._verify({"reserve_pct": value})
                return
            except VerifyError:
                if attempt == 2:
                    raise
                time.sleep(self.cfg.backoff_base_s)

    def _set_export_limit(self, watts: float | None) -> None:
        if watts is None:
            self._apply_settings({"export_rule": "battery_ok"})
        elif watts == 0:
            self._apply_settings({"export_rule": "never"})
        else:
            raise Unsupported("a Powerwall has no numeric export limit: use 0 (never export) or none (battery_ok)")

    def _curtail_snapshot(self) -> dict[str, Any]:
        return {"export_rule": self._settings(self.site_info(fresh=True))["export_rule"]}

    def _curtail(self) -> None:
        self._apply_settings({"export_rule": "never"})

    def _restore_curtail(self, snap: dict[str, Any]) -> None:
        rule = snap.get("export_rule") or "battery_ok"
        self._apply_settings({"export_rule": "battery_ok" if rule == "never" else rule})

    # -- Tesla-only services ----------------------------------------------------------------------------
    def set_operation_mode(self, mode: str) -> CommandResult:
        params = {"mode": mode}
        if mode not in OPERATION_MODES:
            return self._refuse("set_operation_mode", params, f"mode {mode!r} is not one of {', '.join(OPERATION_MODES)}")
        return self._command("set_operation_mode", params, lambda: self._apply_settings({"operation_mode": mode}))

    def set_grid_export(self, rule: str) -> CommandResult:
        params = {"export": rule}
        if rule not in EXPORT_RULES:
            return self._refuse("set_grid_export", params, f"export rule {rule!r} is not one of {', '.join(EXPORT_RULES)}")
        return self._command("set_grid_export", params, lambda: self._apply_settings({"export_rule": rule}))

    def set_grid_charging(self, enabled: bool) -> CommandResult:
        return self._command("set_grid_charging", {"enabled": enabled},
                             lambda: self._apply_settings({"grid_charging": bool(enabled)}))

    def upload_tariff(self, tariff_content_v2: dict[str, Any]) -> CommandResult:
        """POST time_of_use_settings with the caller's ``tariff_content_v2``; confirmed by the code read back."""
        params = {"code": tariff_content_v2.get("code"), "name": tariff_content_v2.get("name")}
        missing = [k for k in ("seasons", "energy_charges") if k not in tariff_content_v2]
        if missing:
            return self._refuse("upload_tariff", params, f"tariff_content_v2 lacks {', '.join(missing)}")
        return self._command("upload_tariff", params, lambda: self._apply_settings({"tariff": tariff_content_v2}))

    def apply_spike_tariff(self, payload: dict[str, Any], expires_at: pd.Timestamp) -> CommandResult:
        """Spike response: the caller's spike tariff, export allowed, no grid charging, autonomous mode.

        The settings are saved durably first (slot ``forced``), so restore_normal / the restore watch / a restart
        put the user's tariff, mode and rules back at ``expires_at``.
        """
        tariff = payload.get("tariff_content_v2", payload)
        params = {"code": tariff.get("code"), "expires_at": str(expires_at)}
        missing = [k for k in ("seasons", "energy_charges") if k not in tariff]
        if missing:
            return self._refuse("spike_tariff", params, f"tariff_content_v2 lacks {', '.join(missing)}")
        until = pd.Timestamp(expires_at)
        until = until.tz_localize("UTC") if until.tzinfo is None else until

        def body() -> None:
            self._fresh_telemetry()
            self._take_control("forced", "spike_tariff", until)
            self._guarded(lambda: self._apply_settings({"tariff": tariff, "export_rule": "battery_ok",
                                                        "grid_charging": False, "operation_mode": "autonomous"}))
        return self._command("spike_tariff", params, body)

    def calendar_history(self, kind: str = "energy", period: str = "day", start_date: str | None = None,
                         end_date: str | None = None) -> dict[str, Any]:
        tz = self.site_info(fresh=False).get("installation_time_zone") or self.site.timezone
        return self.client.calendar_history(self.site_id, kind=kind, period=period, start_date=start_date,
                                            end_date=end_date, time_zone=tz)

    def battery_health(self) -> dict[str, Any]:
        live = self.client.live_status(self.site_id)
        info = self.site_info(fresh=True)
        where = f"Tesla site {self.site_id}"
        soh = _soh(live, info, where)
        soc_pct = _number(live, "percentage_charged", where)
        return {"soh": soh, "total_pack_energy_wh": _number(live, "total_pack_energy", where),
                "nameplate_energy_wh": _number(info, "nameplate_energy", where),
                "degradation_pct": None if soh is None else round((1 - soh) * 100, 2),
                "soc": None if soc_pct is None else soc_pct / 100.0}


def _number(payload: dict[str, Any], key: str, where: str) -> float | None:
    """A finite number from a reply (None when absent/null); text, booleans, NaN or infinity are refused."""
    value = payload.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DeviceRejected(f"{where}: {key} is {value!r}, not a finite number")
    return float(value)


def _timestamp(value: Any, where: str) -> pd.Timestamp:
    if not value:
        return pd.Timestamp.now(tz="UTC")
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise DeviceRejected(f"{where}: timestamp {value!r} is not a date-time ({exc})") from None
    if ts is pd.NaT:
        raise DeviceRejected(f"{where}: timestamp {value!r} is not a date-time")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _soh(live: dict[str, Any], info: dict[str, Any], where: str) -> float | None:
    pack, nameplate = _number(live, "total_pack_energy", where), _number(info, "nameplate_energy", where)
    return min(1.0, pack / nameplate) if pack and nameplate and nameplate > 0 and pack > 0 else None


def fleet_oauth(site: Any) -> TeslaOAuth:
    """The site's Fleet API log-in (``battery.oauth_client_id`` + ``refresh_token_env``), its rotated tokens
    kept in ``$POWERSYNC_HOME/credentials/tesla_<refresh_token_env>.json`` (one file per account, shared by
    every site and process that names the same variable)."""

    cfg = site.battery
    seed = os.environ.get(cfg.refresh_token_env or "", "").strip()
    if not seed:
        raise DeviceError(f"site {site.id!r}: Tesla refresh token missing: environment variable "
                          f"{cfg.refresh_token_env} is not set")
    access = (os.environ.get(cfg.token_env, "").strip() or None) if cfg.token_env else None
    url = cfg.oauth_token_url or os.environ.get(AUTH_URL_ENV) or FLEET_AUTH_TOKEN_URL
    return TeslaOAuth(cfg.oauth_client_id, seed, CredentialFile(f"tesla_{cfg.refresh_token_env}"), token_url=url,
                      access_token=access, timeout_s=cfg.timeout_s, seed_name=str(cfg.refresh_token_env))


def fleet_oauth_client(site: Any, base_url: str) -> FleetOAuthClient:
    cfg = site.battery
    return FleetOAuthClient(base_url, fleet_oauth(site), timeout_s=cfg.timeout_s, attempts=cfg.connect_attempts,
                            backoff_base_s=cfg.backoff_base_s, rate_limit_per_minute=cfg.rate_limit_per_minute)
