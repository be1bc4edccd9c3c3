"""Blend a provider's published price forecast with the learned model, by horizon, with provenance per interval.

Weights (share given to the provider; the learned path gets the rest), by horizon step h (5 minutes each)
and by the age of the provider's forecast:

==================  ============================  =====================================================
provider            weight by horizon             why
==================  ============================  =====================================================
``aemo_p5min``      1.0 for h < 12 (its 1 h)      AEMO's own 5-minute dispatch engine run on current
                                                  bids: nothing learned from history competes with it.
``aemo_predispatch`` 0.9 to 6 h, 0.7 to 24 h,      30-minute predispatch (to the end of the next trading
                    0.6 beyond                    day) misses late rebids; at long range the learned
                                                  profile carries what predispatch cannot see.
``amber``           1.0 for the first hour,       ``advancedPrice.predicted`` is Amber's own forecast
                    0.8 to 6 h, 0.6 beyond        (itself built on predispatch), trusted most near term.
``octopus``         1.0 over its whole horizon    day-ahead Agile prices are the tariff, not a forecast.
``default``         0.8 to 6 h, 0.6 beyond
==================  ============================  =====================================================

Staleness: the weight is full for forecasts up to ``fresh_steps`` old and falls linearly to zero at
``max_age_steps`` (P5MIN 15 min, predispatch 60 min, Amber 30 min, Octopus never), so a provider outage
hands the horizon to the learned model instead of trusting a stale path.

These are documented defaults, not fitted: the stored data carries only a handful of captured provider
forecasts (6 Amber responses), too few to fit anything. :func:`fit_blend_weights` fits them per horizon
bucket by least squares as soon as captured forecasts and their realised prices exist.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..timegrid import HORIZON_STEPS, STEP
from .price_mapping import RetailMap, SpikeReserveRule, reserve_gate_open
from .price_model import FittedPriceModel, PriceModelError, price_scale
from .strategy_choice import STRATEGIES

PROVENANCE = ("provider", "learned", "filled")


@dataclass(frozen=True)
class BlendWeights:
    """Provider weight by horizon (``edges`` in 5-minute steps, ``weights`` per bucket) and staleness."""

    edges: tuple[int, ...]
    weights: tuple[float, ...]
    fresh_steps: int = 2
    max_age_steps: int | None = 12

    def provider_weight(self, h: np.ndarray | int, age_steps: int = 0) -> np.ndarray:
        h = np.asarray(h)
        b = np.clip(np.searchsorted(np.asarray(self.edges[1:]), h, side="right"), 0, len(self.weights) - 1)
        w = np.asarray(self.weights, float)[b]
        return w * self.freshness(age_steps)

    def freshness(self, age_steps: int) -> float:
        if self.max_age_steps is None or age_steps <= self.fresh_steps:
            return 1.0
        if age_steps >= self.max_age_steps:
            return 0.0
        return 1.0 - (age_steps - self.fresh_steps) / (self.max_age_steps - self.fresh_steps)


WEIGHTS: dict[str, BlendWeights] = {
    "aemo_p5min": BlendWeights((0, 12, 10**9), (1.0, 0.0), fresh_steps=1, max_age_steps=3),
    "aemo_predispatch": BlendWeights((0, 72, 288, 10**9), (0.9, 0.7, 0.6), fresh_steps=6, max_age_steps=12),
    "amber": BlendWeights((0, 12, 72, 10**9), (1.0, 0.8, 0.6), fresh_steps=1, max_age_steps=6),
    "octopus": BlendWeights((0, 10**9), (1.0,), max_age_steps=None),
    "default": BlendWeights((0, 72, 10**9), (0.8, 0.6), fresh_steps=2, max_age_steps=12),
    # a replay serves the real future (the demo's perfect forecast): nothing to blend in where it has data
    "replay": BlendWeights((0, 10**9), (1.0,), max_age_steps=None),
}
_KIND_ALIASES = {"aemo": "aemo_predispatch", "nemweb": "aemo_predispatch", "flow_power": "aemo_predispatch",
                 "globird": "aemo_predispatch"}


def blend_weights(kind: str | None) -> BlendWeights:
    """The documented weights for a provider kind (``amber``, ``octopus``, ``aemo_p5min``, ...)."""
    k = _KIND_ALIASES.get(kind or "default", kind or "default")
    return WEIGHTS.get(k, WEIGHTS["default"])


def fit_blend_weights(provider: np.ndarray, learned: np.ndarray, realised: np.ndarray, horizon: np.ndarray,
                      edges: tuple[int, ...] = (0, 12, 72, 288, 10**9)) -> BlendWeights:
    """Weights per horizon bucket minimising squared error of ``w*provider + (1-w)*learned`` (clipped to 0..1).

    Inputs are flat arrays over (issue time, horizon step) pairs where all three are known.
    """
    provider, learned, realised, horizon = (np.asarray(a, float) for a in (provider, learned, realised, horizon))
    ws = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (horizon >= lo) & (horizon < hi) & np.isfinite(provider) & np.isfinite(learned) & np.isfinite(realised)
        d = provider[m] - learned[m]
        den = float(d @ d)
        ws.append(float(np.clip((realised[m] - learned[m]) @ d / den, 0.0, 1.0)) if den > 1e-12 else 0.5)
    return BlendWeights(tuple(edges), tuple(ws))


def _history_series(history: pd.DataFrame, model: FittedPriceModel) -> pd.Series:
    col = model.series if model.series in history.columns else "import_price"
    s = history[col].astype(float).dropna()
    return s[~s.index.duplicated(keep="last")].sort_index()


def blend_price_horizon(provider_frame: pd.DataFrame, history: pd.DataFrame, now: pd.Timestamp,
                        model: FittedPriceModel | None, *, provider_kind: str | None = None,
                        retail: tuple[RetailMap, RetailMap] | None = None, horizon: int = HORIZON_STEPS,
                        reserve: SpikeReserveRule | None = None, strategy: str = "learned") -> pd.DataFrame:
    """The planning horizon from ``now`` (5-minute grid, ``horizon`` slots) with provenance per interval.

    ``provider_frame``: the provider's price frame (realised and/or ``is_forecast`` rows, native grid);
    ``history``: realised prices up to ``now`` (``import_price``, ``export_price`` and ``rrp`` where known),
    e.g. ``HistoryStore.read_prices``; ``model``: the fitted model in force (None: no model yet);
    ``reserve``: the spike-reserve rule (:class:`.price_mapping.SpikeReserveRule`, default: its defaults; a
    site sets it in ``features.spike_reserve``); ``strategy``: the site's daily choice
    (:mod:`.strategy_choice`): ``learned`` plans with the rule, ``learned_no_reserve`` on the model's expected
    value, ``persistence`` on yesterday's realised prices at the same time (the provider still blended in).

    Columns: ``import_price``, ``export_price`` (what the planner uses; the spike-reserve rule applied to
    learned intervals), ``p10``/``p50``/``p90`` (import price quantiles, $/kWh), ``price_low``/``price_high``
    (= p10/p90 where the provider gave none), ``provider_weight``, ``provenance``
    (``provider`` / ``learned`` / ``filled``), ``spike_status`` (the provider's, or ``potential`` where the
    learned P90 reaches the spike threshold; needs ``retail``), ``is_forecast``, ``filled``.
    """
    now = pd.Timestamp(now).tz_convert("UTC").floor("5min")
    idx = pd.date_range(now, periods=horizon, freq=STEP, tz="UTC", name="interval_start")
    prov = _provider_on_grid(provider_frame, idx)
    have = prov["import_price"].notna().to_numpy()
    out = pd.DataFrame(index=idx)
    reserve = reserve or SpikeReserveRule()
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy {strategy!r}: expected one of {STRATEGIES}")
    if strategy == "learned_no_reserve":
        reserve = replace(reserve, weight=0.0)
    if strategy == "persistence":
        learned = _persistence(history, now, idx)
    else:
        learned = _learned(history, now, model, idx, retail, reserve)
    last_imp, last_exp = _last_known(provider_frame, history, now)
    if learned is not None:
        l_imp, l_exp, q10, q50, q90 = learned
        kind = provider_kind or _kind_of(provider_frame)
        weights = blend_weights(kind)
        age = _age_steps(provider_frame, now)
        w = np.where(have, weights.provider_weight(np.arange(horizon), age), 0.0)
        w[0] = 1.0 if have[0] else 0.0  # the current interval: the provider's (realised) price
        p_imp = prov["import_price"].to_numpy(float)
        p_exp = prov["export_price"].to_numpy(float)
        imp = np.where(have, w * np.nan_to_num(p_imp) + (1 - w) * l_imp, l_imp)
        exp = np.where(have, w * np.nan_to_num(p_exp) + (1 - w) * l_exp, l_exp)
        shift = imp - l_imp  # quantiles follow the blended centre
        out["p10"], out["p50"], out["p90"] = q10 + shift, q50 + shift, q90 + shift
        out["provenance"] = np.where(have & (w > 0), "provider", "learned")
        out["provider_weight"] = w
    else:
        p_imp = prov["import_price"].ffill().to_numpy(float)
        p_exp = prov["export_price"].ffill().to_numpy(float)
        imp = np.where(np.isnan(p_imp), last_imp, p_imp)
        exp = np.where(np.isnan(p_exp), last_exp, p_exp)
        out["p10"] = out["p50"] = out["p90"] = imp
        out["provenance"] = np.where(have, "provider", "filled")
        out["provider_weight"] = have.astype(float)
    out["import_price"], out["export_price"] = imp, exp
    lo = prov["price_low"].to_numpy(float) if "price_low" in prov else np.full(horizon, np.nan)
    hi = prov["price_high"].to_numpy(float) if "price_high" in prov else np.full(horizon, np.nan)
    out["price_low"] = np.where(np.isfinite(lo), lo, out["p10"].to_numpy())
    out["price_high"] = np.where(np.isfinite(hi), hi, out["p90"].to_numpy())
    sorted_q = np.sort(out[["p10", "p50", "p90"]].to_numpy(), axis=1)
    out["p10"], out["p50"], out["p90"] = sorted_q[:, 0], sorted_q[:, 1], sorted_q[:, 2]
    out["filled"] = out["provenance"] == "filled"
    out["spike_status"] = _spike_status(prov, out, reserve.threshold if (model is None or model.series == "rrp") else None,
                                        retail)
    is_fc = prov["is_forecast"].astype("boolean").fillna(True).to_numpy(bool) if "is_forecast" in prov else np.ones(horizon, bool)
    out["is_forecast"] = np.where(out["provenance"] == "provider", is_fc, True)
    return out


def _spike_status(prov: pd.DataFrame, out: pd.DataFrame, threshold_rrp: float | None,
                  retail: tuple[RetailMap, RetailMap] | None) -> np.ndarray:
    """The provider's own spike flag where it gave one; ``potential`` where the learned P90 reaches the threshold."""
    status = np.full(len(out), "none", dtype=object)
    if "spike_status" in prov:
        given = prov["spike_status"].to_numpy(dtype=object)
        has = pd.notna(given)
        status[has] = given[has]
    if threshold_rrp is not None and retail is not None:
        learned = (out["provenance"] == "learned").to_numpy() & (status == "none")
        status[learned & (out["p90"].to_numpy() >= float(retail[0](np.array([threshold_rrp]))[0]))] = "potential"
    return status


def _provider_on_grid(frame: pd.DataFrame, idx: pd.DatetimeIndex) -> pd.DataFrame:
    """The provider's values on the 5-minute horizon grid (30-minute rows held for their six slots)."""
    if frame is None or frame.empty:
        return pd.DataFrame({"import_price": np.nan, "export_price": np.nan}, index=idx)
    cols = [c for c in ("import_price", "export_price", "price_low", "price_high", "is_forecast", "spike_status")
            if c in frame]
    f = frame[cols][~frame.index.duplicated(keep="last")].sort_index()
    steps = f.index.to_series().diff().dropna()
    native = steps.mode().iloc[0] if len(steps) else STEP
    hold = max(int(native / STEP) - 1, 0)
    union = f.reindex(f.index.union(idx)).sort_index()
    held = union.ffill(limit=hold) if hold else union
    out = held.reindex(idx)
    out = out.loc[:, ~out.columns.duplicated()]
    return out


def _kind_of(frame: pd.DataFrame) -> str:
    if frame is None or frame.empty or "source" not in frame:
        return "default"
    src = str(frame["source"].iloc[-1]).lower()
    for k in ("p5min", "predispatch", "amber", "octopus"):
        if k in src:
            return {"p5min": "aemo_p5min", "predispatch": "aemo_predispatch"}.get(k, k)
    return "default"


def _age_steps(frame: pd.DataFrame, now: pd.Timestamp) -> int:
    if frame is None or frame.empty or "fetched_at" not in frame:
        return 0
    fetched = pd.to_datetime(frame["fetched_at"], utc=True).max()
    return max(0, int((now - fetched) / STEP))


def _last_known(provider_frame: pd.DataFrame, history: pd.DataFrame, now: pd.Timestamp) -> tuple[float, float]:
    for f in (provider_frame, history):
        if f is not None and not f.empty:
            past = f[f.index <= now]
            if not past.empty:
                return float(past["import_price"].iloc[-1]), float(past["export_price"].iloc[-1])
    raise PriceModelError(f"no price known at or before {now.isoformat()} from the provider or the history")


def _persistence(history: pd.DataFrame, now: pd.Timestamp, idx: pd.DatetimeIndex):
    """(import, export, p10, p50, p90) from yesterday's realised prices at the same time (the day before
    for 24-48 h ahead), or None when the history does not reach back a day."""
    if history is None or history.empty:
        return None
    past = history[history.index <= now][["import_price", "export_price"]].dropna()
    past = past[~past.index.duplicated(keep="last")].sort_index()
    if past.empty or past.index[0] > now - pd.Timedelta(days=1):
        return None
    days_back = (idx - now) // pd.Timedelta(days=1) + 1
    source = idx - pd.to_timedelta(days_back, unit="D")
    src = past.reindex(past.index.union(source.unique())).ffill().reindex(source)
    imp, exp = src["import_price"].to_numpy(float), src["export_price"].to_numpy(float)
    if not (np.isfinite(imp).all() and np.isfinite(exp).all()):
        return None
    return imp, exp, imp, imp, imp


def _learned(history: pd.DataFrame, now: pd.Timestamp, model: FittedPriceModel | None, idx: pd.DatetimeIndex,
             retail: tuple[RetailMap, RetailMap] | None, reserve: SpikeReserveRule):
    """(import, export, p10, p50, p90) of the learned model in $/kWh, or None when it cannot run."""
    if model is None or history is None or history.empty:
        return None
    s = _history_series(history, model)
    s = s[s.index <= now]
    if s.empty or s.index[-1] < now - pd.Timedelta(minutes=30):
        return None  # no recent realised value: the model has nothing to condition on
    recent = s[s.index > now - pd.Timedelta(days=1)]
    recent = recent.reindex(pd.date_range(recent.index[0], now, freq=STEP)).ffill()
    path = model.forecast(now, recent, len(idx))
    if model.series == "rrp":
        if retail is None:
            past = history[history.index <= now]
            retail = (RetailMap.fit(past["rrp"], past["import_price"]), RetailMap.fit(past["rrp"], past["export_price"]))
        imap, emap = retail
    else:
        imap = RetailMap()
        past = history[history.index <= now]
        emap = RetailMap.fit(past["import_price"], past["export_price"])
    scale = price_scale(model.series)
    centre = path.mean
    if reserve_gate_open(s.index, s.to_numpy(), now, reserve.gate, scale):  # else no spike lately: the expected value
        in_episode = reserve_gate_open(s.index, s.to_numpy(), now, reserve.episode_gate, scale)
        centre = reserve.plan(path.mean, path.p90, in_episode=in_episode, scale=scale)
    return (imap(centre), emap(reserve.export_path(path.mean, centre)), imap(path.p10), imap(path.p50),
            imap(path.p90))
