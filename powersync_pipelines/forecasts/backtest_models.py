"""Backtest plug-ins (``powersync backtest --forecast learned|blended``): the learned price model, walk-forward.

Loaded by ``backtest.forecasts`` through its ``PLUGIN_MODULES`` hook. At a step in local day D the model
in use was fitted on data strictly before D's local midnight (refitted once per day, as the live refit asset
does), and the forecast issued at the step reads realised prices up to and including the step's own
interval (known at its start). Load and solar stay the backtest's recent-days profile (``persistence``).

Options (``ForecastOptions.params``, all optional):

* ``history``: price files/glob/folder (AEMO price-and-demand CSVs, or one CSV of ``interval_start``,
  ``rrp``) holding history *before* the backtest data, so the first days of a window have ``fit_days`` to
  learn from; ``region`` picks the region. Only rows before the data's first slot are used.
  Without it the model learns from what the backtest data holds (3 days before the window, then growing).
* ``retail``: ``(network_adder_per_kwh, gst, import_floor_per_kwh, export_factor, export_fee_per_kwh)``
  to map RRP forecasts to import/export exactly; without it the map is fitted on past (RRP, price) pairs.
* ``history_sources``: set by ``backtest.runner`` from the run's own ``--prices`` when no ``history`` is given;
  read the same way, but sources that are not AEMO RRP history (Amber captures...) are skipped.
* ``reserve_slots``: at most this many lifted slots per day of horizon (default: all);
  ``calm_reserve_slots``: the same cap, only in the calm regime (no realised interval at or above
  ``calm_level`` $/MWh, default the model's ``spike_level``, within ``calm_days``, default 1);
  ``target_clip``, ``target_clip_after_hours``, ``dev_clip``, ``spike_level``, ``ridge``,
  ``quantile_half_life_days``, ``issue_blocks``, ``block_prior_days``: model knobs (:class:`.PriceModelConfig`).
* ``reserve_weight`` / ``spike_threshold``: the spike-reserve rule (:mod:`.price_mapping`); ``reserve_gate``:
  ``"LEVEL:DAYS,..."`` (default ``300:1``, :data:`.price_mapping.RESERVE_GATE`; empty string: ungated);
  ``reserve_horizon_hours``: lift only slots within that many hours (default 18; ``none``: the whole horizon);
  ``reserve_start_hours``: lift only from that many hours ahead (default 0); ``quiet_threshold`` ($/MWh,
  default 300; ``none``: one threshold) applies outside a spike episode (``episode_gate``, default
  ``1000:7``), ``spike_threshold`` inside one (:func:`.price_mapping.reserve_threshold`);
  ``reserve_side``: ``both`` (default: the lifted path prices imports and exports) or ``import`` (exports
  stay on the expected value); ``planning``: ``mean`` (default) or ``p50``; ``fit_days``, ``half_life_days``,
  ``clip_q``: model knobs. The rule's options (:data:`RULE_OPTIONS`) build one
  :class:`.price_mapping.SpikeReserveRule`, the type the live blend plans with; ``backtest.runner`` fills them
  from the site's ``features.spike_reserve`` where the site changed a setting and no option names it.

* ``scenarios``: K > 0 plans over K analog price scenarios (:meth:`.FittedPriceModel.scenarios`) with the
  expected-value LP (``optimizer.scenarios``) instead of the single path; ``scenario_days`` (default K + 1)
  days of analogs are kept; ``scenario_regime``: same-regime analogs first; ``scenario_lift``: the reserve
  rule's lifted path as one more scenario (true: equally likely, a number: its probability);
  ``scenario_split`` ($/MWh): an analog may leave the "nothing unusual yet" trajectory only once its
  surprise starts; ``scenarios_when``: ``always`` or ``calm`` (only in the calm regime). Measured and not
  adopted (figures in ``benchmarks/bench_price_forecast.py``).
* ``planning`` ``sdp``: stochastic DP over a Markov chain of price bins (:mod:`.price_chain`,
  ``optimizer.sdp``), options ``chain_fit_days`` / ``chain_half_life_days`` / ``chain_prior_weight`` and
  ``sdp_when`` (``always`` | ``calm`` | ``no_reserve``: elsewhere the LP plans on the reserve-rule path).
  Measured on two tuning windows and not adopted.

``blended``: the provider's published forecast where the data carries one (Amber captures), blended with
the learned path by horizon (:mod:`.blend`), learned beyond.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from functools import lru_cache
from typing import TypeVar

import numpy as np
import pandas as pd

from ..backtest.data import BacktestData
from ..backtest.forecasts import ForecastOptions, PersistenceForecast, index_published, register_forecast
from ..optimizer.scenarios import ScenarioSet
from ..optimizer.sdp import ChainPrices
from .blend import BlendWeights, blend_weights
from .price_chain import PriceChain, PriceChainConfig, fit_price_chain
from .price_mapping import (
    CALM_DAYS,
    CALM_LEVEL_PER_MWH,
    CALM_RESERVE_SLOTS,
    RetailMap,
    SpikeReserveRule,
    gate_open,
    last_spike_age_days,
)
from .price_model import (
    STEPS_PER_DAY,
    FittedPriceModel,
    PriceModelConfig,
    PriceModelError,
    feature_vector,
    local_keys,
    price_scale,
)


@lru_cache(maxsize=4)
def _history_rrp(spec: str, region: str | None) -> pd.Series:
    """RRP ($/MWh) by UTC interval start (cached per process: workers read it once).

    ``spec``: AEMO price-and-demand CSVs (file, glob or folder), or one CSV with ``interval_start`` (ISO with
    offset) and ``rrp`` columns.
    """
    from ..backtest.inputs import expand_price_paths
    from ..prices.history import read_aemo_price_and_demand

    files = [f for f in expand_price_paths([spec]) if f.suffix.lower() == ".csv"]
    if len(files) == 1:
        head = files[0].open().readline()
        if "interval_start" in head and "rrp" in head:
            df = pd.read_csv(files[0])
            idx = pd.DatetimeIndex(pd.to_datetime(df["interval_start"], format="ISO8601", utc=True))
            return pd.Series(df["rrp"].to_numpy(dtype=float), index=idx, name="rrp").sort_index()
    return read_aemo_price_and_demand([str(f) for f in files], region)["rrp"]


def _lenient_history(specs: tuple[str, ...], region: str | None, before: pd.Timestamp) -> pd.Series | None:
    """RRP before ``before`` from the backtest's own ``--prices`` sources; None where they are not AEMO history
    (e.g. Amber captures): the model then learns from the backtest data alone, as without the option."""
    parts = []
    for spec in specs:
        try:
            h = _history_rrp(spec, region)
        except Exception:  # noqa: BLE001 - not readable as AEMO RRP history: not a history source
            continue
        parts.append(h[h.index < before])
    if not parts:
        return None
    h = pd.concat(parts).sort_index()
    return h[~h.index.duplicated(keep="last")]


_UNSET = object()
T = TypeVar("T")


def options_into(base: T, options: ForecastOptions, names: Mapping[str, str], optional: Collection[str] = (),
                 readers: Mapping[str, Callable[[object], object]] | None = None) -> T:
    """``base`` (a dataclass) with each field of ``names`` (field -> option name) that the options set.

    Why one reader: the model, the price chain and the spike-reserve rule all take their knobs from
    ``--forecast-param`` text or from Python values, and each should read them the same way. A value is
    read by ``readers[field]`` where given, else as the type of the base value (float where that is None;
    true/false text for a bool; a whole number, also written ``4.0``, for an int). A field in ``optional`` is switched off (None) by ``none``, an empty value
    or None; elsewhere None leaves the default.
    """
    kw: dict[str, object] = {}
    for name, option in names.items():
        v = options.param(option, _UNSET)
        if v is _UNSET:
            continue
        if name in optional and _switched_off(v):
            kw[name] = None
        elif v is not None:
            current = getattr(base, name)
            read = (readers or {}).get(name) or (
                _flag if isinstance(current, bool) else _whole if isinstance(current, int)
                else float if current is None else type(current))
            kw[name] = read(v)
    return replace(base, **kw)


# PriceModelConfig knobs by option name (the field's own name unless aliased); "none" switches the optional
# ones off (e.g. target_clip=none: the wide 2 x dev_clip).
MODEL_OPTIONS: dict[str, str] = {
    "fit_days": "fit_days", "profile_half_life_days": "half_life_days", "profile_clip_q": "clip_q",
    "smooth_slots": "smooth_slots", "dev_clip": "dev_clip", "target_clip": "target_clip",
    "spike_level": "spike_level", "ridge": "ridge", "quantile_half_life_days": "quantile_half_life_days",
    "target_clip_after_hours": "target_clip_after_hours", "issue_blocks": "issue_blocks",
    "block_prior_days": "block_prior_days",
}
_OPTIONAL_KNOBS = ("target_clip", "target_clip_after_hours", "quantile_half_life_days", "block_prior_days")
CHAIN_OPTIONS: dict[str, str] = {"fit_days": "chain_fit_days", "half_life_days": "chain_half_life_days",
                                 "prior_weight": "chain_prior_weight"}


def model_config(options: ForecastOptions) -> PriceModelConfig:
    return options_into(PriceModelConfig(), options, MODEL_OPTIONS, _OPTIONAL_KNOBS)


@register_forecast("learned")
class LearnedForecast(PersistenceForecast):
    """The learned price model, refitted each local day on data before that day."""

    def __init__(self, data: BacktestData, options: ForecastOptions) -> None:
        super().__init__(data, options)
        self.config = model_config(options)
        # scenarios=K: expected-value planning over K analog price scenarios (optimizer.scenarios); the
        # spike-reserve rule then only shapes the steps planned on the single path (and scenario_lift).
        self.n_scenarios = int(options.param("scenarios", 0) or 0)
        self.scenario_regime = _flag(options.param("scenario_regime", False))  # same-regime analogs first
        # scenario_lift: + the reserve rule's path as one more scenario; true: equally likely, a number in (0, 1):
        # that probability (the analogs share the rest)
        lift = options.param("scenario_lift", False)
        is_flag = isinstance(lift, bool) or str(lift).strip().lower() in _FLAGS
        self.scenario_lift = _flag(lift) if is_flag else True
        self.lift_weight = None if is_flag else float(lift)
        if self.lift_weight is not None and not 0 < self.lift_weight < 1:
            raise ValueError(f"scenario_lift {lift!r}: expected true/false or a probability in (0, 1)")
        # scenarios_when "calm": only in the calm regime (see self.calm); after a recent spike the single
        # path with the spike-reserve rule plans; "always" (default): every step.
        self.scenarios_when = str(options.param("scenarios_when", "always"))
        if self.scenarios_when not in ("always", "calm"):
            raise ValueError(f"scenarios_when {self.scenarios_when!r}: expected 'always' or 'calm'")
        split = options.param("scenario_split")  # $/MWh: see scenario_prices
        self.scenario_split = _optional(split, float)
        if self.scenario_split is not None and self.lift_weight is not None:
            raise ValueError("scenario_split and a scenario_lift probability do not combine (chain 0 has weight 0)")
        if self.n_scenarios > 0:
            days = int(options.param("scenario_days", self.n_scenarios + 1))
            self.config = replace(self.config, scenario_days=days)
            self.n_scenarios += int(self.scenario_lift) + int(self.scenario_split is not None)
        self.rule = reserve_rule(options)
        calm = options.param("calm_reserve_slots", CALM_RESERVE_SLOTS)
        self.calm_reserve_slots = _optional(calm, int)
        self.calm_days = float(options.param("calm_days", CALM_DAYS))
        level = options.param("calm_level", CALM_LEVEL_PER_MWH)
        self.calm_level = self.config.spike_level if level in (None, "") else float(level)  # $/MWh
        self.planning = str(options.param("planning", "mean"))
        if self.planning not in ("mean", "p50", "sdp"):
            raise ValueError(f"planning {self.planning!r}: expected 'mean', 'p50' or 'sdp'")
        # planning "sdp": the planner decides by stochastic DP over a Markov chain of price bins
        # (forecasts.price_chain, optimizer.sdp); the learned path still serves the LP fallback and the metrics.
        self.uses_chain = self.planning == "sdp"
        # sdp_when "calm": the SDP decides only in the calm regime (self.calm), "no_reserve" only while the
        # spike-reserve rule is closed (self.reserve_open); otherwise the LP plans on the reserve-rule path.
        self.sdp_when = str(options.param("sdp_when", "always"))
        if self.sdp_when not in ("always", "calm", "no_reserve"):
            raise ValueError(f"sdp_when {self.sdp_when!r}: expected 'always', 'calm' or 'no_reserve'")
        self.chain_config = options_into(PriceChainConfig(), options, CHAIN_OPTIONS)
        self._chains: dict[pd.Timestamp, PriceChain | None] = {}
        rrp = np.asarray(data.rrp, dtype=float)
        self.uses_rrp = bool(np.isfinite(rrp).all())
        # The modelled series: wholesale RRP where the data has it, else the import price itself.
        self.x = rrp if self.uses_rrp else data.import_price.copy()
        hist = options.param("history")
        self.history = None
        if hist is not None and self.uses_rrp:
            h = _history_rrp(str(hist), options.param("region"))
            self.history = h[h.index < data.index[0]]
        elif options.param("history_sources") and self.uses_rrp:
            self.history = _lenient_history(tuple(options.param("history_sources")), options.param("region"),
                                            data.index[0])
        self.series = self._series()
        self.kind = "rrp" if self.uses_rrp else "import_price"
        # The rule's levels are $/MWh; a $/kWh series (no RRP in the data) compares them / 1000, as live does.
        self.scale = scale = price_scale(self.kind)
        # Per slot: may the spike-reserve rule fire (a recent enough spike of some gate level was seen)?
        self.reserve_open = gate_open(self.series, data.index, self.rule.gate, scale)
        # Per slot: inside a spike episode (episode_gate; empty: always)? Outside one the rule fires only from
        # quiet_threshold (see price_mapping.reserve_threshold).
        self.episode = gate_open(self.series, data.index, self.rule.episode_gate, scale)
        # Per slot: calm regime (nothing at or above calm_level for calm_days): the reserve rule lifts at most
        # calm_reserve_slots slots per day (see price_mapping.CALM_RESERVE_SLOTS).
        self.calm = last_spike_age_days(self.series, data.index, self.calm_level * scale) > self.calm_days
        retail = options.param("retail")
        if retail is not None and self.uses_rrp:
            self.imap, self.emap = RetailMap.from_retail(*(float(v) if v is not None else None for v in retail))
            self._fitted_maps = True
        else:
            self.imap = self.emap = None
            self._fitted_maps = False
        # Local keys for every slot of the data plus two days beyond its end (horizons run past it).
        ext = pd.date_range(data.index[0], periods=data.n + 2 * STEPS_PER_DAY, freq="5min")
        self.daytype, self.slot, self.hour = local_keys(ext, data.timezone)
        local = ext.tz_convert(data.timezone)
        midnight = local.normalize()
        self.day_start = pd.DatetimeIndex(midnight).tz_convert("UTC")
        self._models: dict[pd.Timestamp, FittedPriceModel | None] = {}
        self.fits = 0

    def _series(self) -> pd.Series:
        own = pd.Series(self.x, index=self.data.index)
        if self.history is None or self.history.empty:
            return own
        return pd.concat([self.history, own])

    def model_for(self, i: int) -> FittedPriceModel | None:
        """The model in force at slot ``i``: fitted on everything before slot i's local midnight."""
        day = self.day_start[i]
        if day not in self._models:
            try:
                self._models[day] = fit_on(self.series, day, self.data.timezone, self.config, self.kind)
                self.fits += 1
            except PriceModelError:
                self._models[day] = None
            if not self._fitted_maps and self.uses_rrp:
                past = self.data.index < day
                self.imap = RetailMap.fit(self.x[past], self.data.import_price[past])
                self.emap = RetailMap.fit(self.x[past], self.data.export_price[past])
        return self._models[day]

    def chain_for(self, i: int) -> PriceChain | None:
        """The price chain in force at slot ``i``: fitted on everything before slot i's local midnight."""
        day = self.day_start[i]
        if day not in self._chains:
            try:
                self._chains[day] = fit_price_chain(self.series, day, self.data.timezone, self.chain_config,
                                                    self.kind)
            except PriceModelError:
                self._chains[day] = None
        return self._chains[day]

    def price_chain(self, i: int, n: int) -> ChainPrices | None:
        """The chain's bins priced at retail for slots i..i+n-1 (None before it can be fitted: the LP plans)."""
        if (self.sdp_when == "calm" and not self.calm[i]) or (self.sdp_when == "no_reserve" and self.reserve_open[i]):
            return None
        chain = self.chain_for(i)
        if chain is None or self.model_for(i) is None:  # model_for also fits the retail maps of the day
            return None
        imp, exp = self._retail(i, chain.values, chain.values)
        hours = self.hour[i:i + n]
        return ChainPrices(import_price=np.broadcast_to(imp, (n, len(imp))),
                           export_price=np.broadcast_to(exp, (n, len(exp))), trans=chain.trans[hours],
                           current_bin=int(chain.bin_of(self.x[i])), current_import=float(self.data.import_price[i]),
                           current_export=float(self.data.export_price[i]), key=self.day_start[i])

    def path(self, i: int, n: int):
        """The learned path (series units) for slots i..i+n-1, or None before the model can be fitted."""
        model = self.model_for(i)
        if model is None:
            return None
        lo = max(0, i - STEPS_PER_DAY + 1)
        vals = self.x[lo:i + 1]
        base_hist = model.profile[self.daytype[lo:i + 1], self.slot[lo:i + 1]]
        feats = feature_vector(vals - base_hist, vals, model.config)
        sl = slice(i, i + n)
        return model.path(None, self.daytype[sl], self.slot[sl], self.hour[sl], feats, float(vals[-1]))

    def _centre_and_plan(self, i: int, n: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(centre, planning path) in series units: the expected path and the same with the reserve rule."""
        p = self.path(i, n)
        if p is None:
            return None
        centre = p.p50 if self.planning == "p50" else p.mean
        if not self.reserve_open[i]:
            return centre, centre.copy()  # no spike lately: plan on the expected value (see price_mapping)
        slots = self.calm_reserve_slots if self.calm[i] and self.calm_reserve_slots is not None else self.rule.max_slots
        return centre, self.rule.plan(centre, p.p90, in_episode=bool(self.episode[i]), scale=self.scale,
                                      max_slots=slots)

    def planning_path(self, i: int, n: int) -> np.ndarray | None:
        both = self._centre_and_plan(i, n)
        return None if both is None else both[1]

    def scenario_prices(self, i: int, n: int) -> ScenarioSet | None:
        """The analog price scenarios at slot ``i`` as a ``ScenarioSet``; None before the model can be fitted
        or when it kept no analogs (the engine then plans on :meth:`prices`).

        With ``scenario_split`` ($/MWh) row 0 is the expected path with weight 0, the "nothing unusual yet"
        trajectory, and analog ``c`` may leave it only from the first interval where it deviates from the
        expected path by at least that much (its surprise is seen when it starts); without it every analog
        is revealed after the current interval (two-stage).
        """
        if self.n_scenarios <= 0 or (self.scenarios_when == "calm" and not self.calm[i]):
            return None
        p = self.path(i, n)
        if p is None:
            return None
        model = self.model_for(i)
        k = self.n_scenarios - int(self.scenario_lift) - int(self.scenario_split is not None)
        hot = bool(self.x[max(0, i - STEPS_PER_DAY + 1):i + 1].max() >= model.config.spike_level) \
            if self.scenario_regime else None
        sc = model.scenarios(p, int(self.slot[i]), k, hot)
        if sc is None:
            return None
        if len(sc) < k:  # fewer days of analogs than scenarios: repeat them (equal weights)
            sc = sc[np.arange(k) % len(sc)]
        if self.scenario_lift:
            sc = np.vstack([sc, self._centre_and_plan(i, n)[1]])
        weights = split = None
        if self.scenario_lift and self.lift_weight is not None:
            weights = np.concatenate([np.full(len(sc) - 1, (1 - self.lift_weight) / (len(sc) - 1)),
                                      [self.lift_weight]])
        if self.scenario_split is not None:
            level = self.scenario_split * price_scale(self.kind)
            surprise = np.abs(sc - p.mean[None, :]) >= level
            surprise[:, 0] = False
            split = np.concatenate([[1], np.where(surprise.any(axis=1), surprise.argmax(axis=1), n)])
            sc = np.vstack([p.mean, sc])
            weights = np.concatenate([[0.0], np.full(len(sc) - 1, 1 / (len(sc) - 1))])
        imp, exp = self._retail(i, sc, sc)
        imp[:, 0], exp[:, 0] = self.data.import_price[i], self.data.export_price[i]
        return ScenarioSet(imp, exp, weights, split)

    def _retail(self, i: int, x_import: np.ndarray, x_export: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Series-unit paths -> (import, export) prices at slot ``i``'s maps (any shape)."""
        if self.uses_rrp:
            return self.imap(x_import), self.emap(x_export)
        past = slice(0, i + 1)
        return x_import, RetailMap.fit(self.data.import_price[past], self.data.export_price[past])(x_export)

    def prices(self, i: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        both = self._centre_and_plan(i, n)
        if both is None:  # not enough history yet: persistence
            return super().prices(i, n)
        centre, x = both
        # reserve side "import": exports stay on the expected value (see price_mapping.RESERVE_SIDE).
        imp, exp = self._retail(i, x, self.rule.export_path(centre, x))
        imp[0], exp[0] = self.data.import_price[i], self.data.export_price[i]
        return imp, exp


_FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False, "": False, "none": False}


def _switched_off(value: object) -> bool:
    """None, an empty value or ``none`` (any case, spaces around): an optional knob is off."""
    return value is None or str(value).strip().lower() in ("", "none")


def _optional(value: object, cast):
    """An optional option: None when switched off (see :func:`_switched_off`), else ``cast(value)``."""
    return None if _switched_off(value) else cast(value)


def _whole(value: object) -> int:
    """An integer option given as an int, a whole float or text (``issue_blocks=4`` or ``4.0``; not ``4.5``)."""
    number = float(str(value).strip()) if not isinstance(value, int | float) else float(value)
    if not number.is_integer():
        raise ValueError(f"expected a whole number, got {value!r}")
    return int(number)


def _flag(value: object) -> bool:
    """A boolean option given as a bool or as CLI text (``--forecast-param scenario_regime=true``)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in _FLAGS:
        raise ValueError(f"expected true or false, got {value!r}")
    return _FLAGS[text]


def parse_reserve_gate(value: object) -> tuple[tuple[float, float], ...]:
    """``"500:3,1000:14"`` (or pairs) -> ((500, 3), (1000, 14)): $/MWh level and look-back days; empty = no gate."""
    if not value:
        return ()
    if isinstance(value, str):
        try:
            pairs = [tuple(float(v) for v in item.split(":")) for item in value.split(",") if item.strip()]
        except ValueError as exc:
            raise ValueError(f"reserve_gate {value!r}: expected LEVEL:DAYS[,LEVEL:DAYS...]") from exc
    else:
        pairs = [tuple(float(v) for v in item) for item in value]
    if any(len(p) != 2 for p in pairs):
        raise ValueError(f"reserve_gate {value!r}: expected LEVEL:DAYS[,LEVEL:DAYS...]")
    return tuple(pairs)


# The backtest option (``--forecast-param NAME=VALUE``) that sets each SpikeReserveRule field, and how its text
# is read; the site's settings travel under the same names (backtest.runner._with_site_reserve).
RULE_OPTIONS: dict[str, str] = {
    "weight": "reserve_weight", "threshold": "spike_threshold", "quiet_threshold": "quiet_threshold",
    "gate": "reserve_gate", "episode_gate": "episode_gate", "horizon_hours": "reserve_horizon_hours",
    "side": "reserve_side", "excess": "spike_excess", "max_slots": "reserve_slots",
    "start_hours": "reserve_start_hours",
}
_RULE_READERS = {"gate": parse_reserve_gate, "episode_gate": parse_reserve_gate, "max_slots": int}


def reserve_rule(options: ForecastOptions) -> SpikeReserveRule:
    """The spike-reserve rule from the forecast options (:data:`RULE_OPTIONS`); unset options keep the rule's
    defaults, ``none`` or an empty value switches an optional setting off."""
    return options_into(SpikeReserveRule(), options, RULE_OPTIONS, ("quiet_threshold", "horizon_hours", "max_slots"),
                        _RULE_READERS)


def reserve_options(rule: SpikeReserveRule, base: SpikeReserveRule | None = None) -> list[tuple[str, object]]:
    """``(option, value)`` for every setting where ``rule`` differs from ``base`` (default: the defaults)."""
    return [(RULE_OPTIONS[name], v) for name, v in rule.changed_from(base or SpikeReserveRule()).items()]


def fit_on(series: pd.Series, day: pd.Timestamp, timezone: str, cfg: PriceModelConfig,
           kind: str = "rrp") -> FittedPriceModel:
    from .price_model import fit_price_model

    return fit_price_model(series, day, timezone, cfg, series=kind)


@register_forecast("blended")
class BlendedForecast(LearnedForecast):
    """Published provider forecasts (where the data carries them) blended with the learned path by horizon."""

    def __init__(self, data: BacktestData, options: ForecastOptions) -> None:
        super().__init__(data, options)
        self.weights: BlendWeights = blend_weights(options.param("provider_kind", "amber"))
        self._issued, self._frames, self._issue_slots = index_published(data)

    def prices(self, i: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        imp, exp = (a.copy() for a in super().prices(i, n))
        j = int(np.searchsorted(self._issue_slots, i, side="right")) - 1
        if j < 0:
            return imp, exp
        k, fi, fe = self._frames[j]
        sel = (k > i) & (k < i + n)
        age_steps = i - int(self._issue_slots[j])
        h = k[sel] - i
        w = self.weights.provider_weight(h, age_steps)
        imp[h] = w * fi[sel] + (1 - w) * imp[h]
        exp[h] = w * fe[sel] + (1 - w) * exp[h]
        return imp, exp
