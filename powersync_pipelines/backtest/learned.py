"""Backtest plug-ins (``powersync backtest --forecast learned|blended``): the learned price model, walk-forward.

Registered through ``backtest.forecasts.PLUGIN_MODULES``. At a step in local day D the model in use was
fitted on data strictly before D's local midnight (refitted once per day, as the live refit asset does), and
the forecast issued at the step reads realised prices up to and including the step's own interval (known at
its start). Load and solar stay the backtest's recent-days profile (``persistence``).

Options are one typed value, :class:`LearnedOptions` (the price model's :class:`.PriceModelConfig`, the
spike-reserve rule as a :class:`.SpikeReserveRule`, where the history comes from), built once: by
``backtest.runner`` from the site (its own ``features.spike_reserve`` rule) and the run's ``--prices``, or
from ``--forecast-param`` text by :func:`learned_options`. Text options (all optional):

* ``history``: price files/glob/folder (AEMO price-and-demand CSVs, or one CSV of ``interval_start``,
  ``rrp``) holding history *before* the backtest data, so the first days of a window have ``fit_days`` to
  learn from; ``region`` picks the region. Only rows before the data's first slot are used.
  Without it the model learns from what the backtest data holds (3 days before the window, then growing).
* ``retail``: ``(network_adder_per_kwh, gst, import_floor_per_kwh, export_factor, export_fee_per_kwh)``
  to map RRP forecasts to import/export exactly; without it the map is fitted on past (RRP, price) pairs.
* the price model's knobs (:data:`MODEL_OPTIONS`: ``fit_days``, ``target_clip``, ``issue_blocks``, ...);
* the spike-reserve rule (:data:`RULE_OPTIONS`): ``reserve_weight``, ``spike_threshold`` (inside a spike
  episode), ``quiet_threshold`` (outside one; ``none``: one threshold), ``reserve_gate`` / ``episode_gate``
  (``"LEVEL:DAYS,..."``; empty: ungated / always an episode), ``reserve_horizon_hours`` (``none``: the whole
  horizon), ``reserve_side`` (``both`` | ``import``). Named options override the site's rule field by field;
* ``select``: ``true`` (default) plans with the strategy chosen day by day by trailing realised savings
  (:mod:`.selection`); ``false`` plans with the learned model and the rule alone; ``select_days`` /
  ``select_margin`` set the selection's trailing window and margin.

``blended``: the provider's published forecast where the data carries one (Amber captures), blended with
the learned path by horizon (:mod:`..forecasts.blend`), learned beyond.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import TypeVar

import numpy as np
import pandas as pd

from ..forecasts.blend import BlendWeights, blend_weights
from ..forecasts.price_mapping import (
    RetailMap,
    SpikeReserveRule,
    check_gate,
    gate_open,
)
from ..forecasts.price_model import (
    STEPS_PER_DAY,
    FittedPriceModel,
    PriceModelConfig,
    PriceModelError,
    feature_vector,
    fit_price_model,
    local_keys,
    price_scale,
)
from ..prices.history import read_aemo_price_and_demand
from .data import BacktestData
from .forecasts import ForecastOptions, PersistenceForecast, index_published, register_forecast
from .inputs import expand_price_paths


@lru_cache(maxsize=4)
def _history_rrp(spec: str, region: str | None) -> pd.Series:
    """RRP ($/MWh) by UTC interval start (cached per process: workers read it once).

    ``spec``: AEMO price-and-demand CSVs (file, glob or folder), or one CSV with ``interval_start`` (ISO with
    offset) and ``rrp`` columns.
    """
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

    Why one reader: the model's and the rule's knobs arrive as ``--forecast-param`` text or as Python values,
    and each should read them the same way. A value is read by ``readers[field]`` where given, else as the
    type of the base value (float where that is None; true/false text for a bool; a whole number, also
    written ``4.0``, for an int). A field in ``optional`` is switched off (None) by ``none``, an empty value
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


def model_config(options: ForecastOptions) -> PriceModelConfig:
    return options_into(PriceModelConfig(), options, MODEL_OPTIONS, _OPTIONAL_KNOBS)


_FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False, "": False, "none": False}


def _switched_off(value: object) -> bool:
    """None, an empty value or ``none`` (any case, spaces around): an optional knob is off."""
    return value is None or str(value).strip().lower() in ("", "none")


def _whole(value: object) -> int:
    """An integer option given as an int, a whole float or text (``issue_blocks=4`` or ``4.0``; not ``4.5``)."""
    number = float(str(value).strip()) if not isinstance(value, int | float) else float(value)
    if not number.is_integer():
        raise ValueError(f"expected a whole number, got {value!r}")
    return int(number)


def _flag(value: object) -> bool:
    """A boolean option given as a bool or as CLI text (``--forecast-param select=false``)."""
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
    return check_gate("reserve_gate", pairs)


# The backtest option (``--forecast-param NAME=VALUE``) that sets each SpikeReserveRule field, and how its text
# is read.
RULE_OPTIONS: dict[str, str] = {
    "weight": "reserve_weight", "threshold": "spike_threshold", "quiet_threshold": "quiet_threshold",
    "gate": "reserve_gate", "episode_gate": "episode_gate", "horizon_hours": "reserve_horizon_hours",
    "side": "reserve_side",
}
_RULE_READERS = {"gate": parse_reserve_gate, "episode_gate": parse_reserve_gate}


def reserve_rule_from_options(options: ForecastOptions, base: SpikeReserveRule | None = None) -> SpikeReserveRule:
    """``base`` (default: the rule's defaults) with every setting the options name; ``none`` or an empty value
    switches an optional setting off."""
    return options_into(base or SpikeReserveRule(), options, RULE_OPTIONS, ("quiet_threshold", "horizon_hours"),
                        _RULE_READERS)


@dataclass(frozen=True)
class LearnedOptions:
    """Everything the learned backtest model plans with, built once (see the module docstring).

    ``select``: the runner plans with the daily strategy selection (:mod:`.selection`) instead of this model
    alone; ``select_days`` / ``select_margin`` are its trailing window and margin (None: its defaults).
    ``history_series``: the realised modelled series before the data, by UTC interval start, given as values
    (the live selection reads it from DuckDB): RRP in $/MWh when ``history_kind`` is ``rrp``, the import price in
    $/kWh when it is ``import_price`` (a market without a wholesale series, e.g. Octopus Agile). Used where no
    ``history`` file is named, and only when the data models the same series (the units differ a thousandfold).
    """

    model: PriceModelConfig = field(default_factory=PriceModelConfig)
    rule: SpikeReserveRule = field(default_factory=SpikeReserveRule)
    history: str | None = None
    history_sources: tuple[str, ...] = ()
    region: str | None = None
    retail: tuple[float | None, ...] | None = None
    provider_kind: str = "amber"
    select: bool = True
    select_days: float | None = None
    select_margin: float | None = None
    history_series: pd.Series | None = field(default=None, compare=False, repr=False)
    history_kind: str = "rrp"

    def __post_init__(self) -> None:
        if self.history_kind not in ("rrp", "import_price"):
            raise ValueError(f"history_kind {self.history_kind!r}: expected 'rrp' or 'import_price'")


def learned_options(options: ForecastOptions, site_rule: SpikeReserveRule | None = None) -> LearnedOptions:
    """The typed options of the learned model: ``options.model_options`` when the caller built them, else read
    once from the text ``params``; rule options named in ``params`` override ``site_rule`` field by field."""
    if isinstance(options.model_options, LearnedOptions):
        return options.model_options
    known = {*MODEL_OPTIONS.values(), *RULE_OPTIONS.values(), "history", "history_sources", "region", "retail",
             "provider_kind", "select", "select_days", "select_margin"}
    unknown = sorted(name for name, _ in options.params if name not in known)
    if unknown:
        raise ValueError(f"unknown learned-model option(s) {', '.join(unknown)} (one of {', '.join(sorted(known))})")
    retail = options.param("retail")
    sources = options.param("history_sources") or ()
    days, margin = options.param("select_days"), options.param("select_margin")
    return LearnedOptions(
        model=model_config(options), rule=reserve_rule_from_options(options, site_rule),
        history=None if options.param("history") is None else str(options.param("history")),
        history_sources=tuple(str(s) for s in sources), region=options.param("region"),
        retail=None if retail is None else tuple(None if v is None else float(v) for v in retail),
        provider_kind=str(options.param("provider_kind", "amber")),
        select=_flag(options.param("select", True)),
        select_days=None if _switched_off(days) else float(days),
        select_margin=None if _switched_off(margin) else float(margin),
    )


@register_forecast("learned")
class LearnedForecast(PersistenceForecast):
    """The learned price model, refitted each local day on data before that day."""

    def __init__(self, data: BacktestData, options: ForecastOptions) -> None:
        super().__init__(data, options)
        self.learned = lo = learned_options(options)
        self.config = lo.model
        self.rule = lo.rule
        rrp = np.asarray(data.rrp, dtype=float)
        self.uses_rrp = bool(np.isfinite(rrp).all())
        # The modelled series: wholesale RRP where the data has it, else the import price itself.
        self.x = rrp if self.uses_rrp else data.import_price.copy()
        self.history = None
        if lo.history is not None and self.uses_rrp:
            h = _history_rrp(lo.history, lo.region)
            self.history = h[h.index < data.index[0]]
        elif lo.history_sources and self.uses_rrp:
            self.history = _lenient_history(lo.history_sources, lo.region, data.index[0])
        self.kind = "rrp" if self.uses_rrp else "import_price"
        if self.history is None and lo.history_series is not None and lo.history_kind == self.kind:
            h = lo.history_series.dropna()
            self.history = h[h.index < data.index[0]]
        self.series = self._series()
        # The rule's levels are $/MWh; a $/kWh series (no RRP in the data) compares them / 1000, as live does.
        self.scale = scale = price_scale(self.kind)
        # Per slot: may the spike-reserve rule fire (a recent enough spike of some gate level was seen)?
        self.reserve_open = gate_open(self.series, data.index, self.rule.gate, scale) & self.rule.active
        # Per slot: inside a spike episode (episode_gate; empty: always)? Outside one the rule fires only from
        # quiet_threshold (see price_mapping.reserve_threshold).
        self.episode = gate_open(self.series, data.index, self.rule.episode_gate, scale)
        if lo.retail is not None and self.uses_rrp:
            self.imap, self.emap = RetailMap.from_retail(*lo.retail)
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
        if not self.reserve_open[i]:
            return p.mean, p.mean.copy()  # no spike lately (or no rule): plan on the expected value
        return p.mean, self.rule.plan(p.mean, p.p90, in_episode=bool(self.episode[i]), scale=self.scale)

    def planning_path(self, i: int, n: int) -> np.ndarray | None:
        both = self._centre_and_plan(i, n)
        return None if both is None else both[1]

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
        # reserve side "import": exports stay on the expected value (see price_mapping.SpikeReserveRule).
        imp, exp = self._retail(i, x, self.rule.export_path(centre, x))
        imp[0], exp[0] = self.data.import_price[i], self.data.export_price[i]
        return imp, exp


_FITS: OrderedDict[tuple, FittedPriceModel | PriceModelError] = OrderedDict()
FIT_CACHE_SIZE = 96  # about three months of daily models (~0.4 MB each)


def fit_on(series: pd.Series, day: pd.Timestamp, timezone: str, cfg: PriceModelConfig,
           kind: str = "rrp") -> FittedPriceModel:
    """The model fitted on ``series`` before ``day``, shared within the process.

    Why a cache: the selection replays several candidates that fit the same model on the same days (the
    learned model with and without the spike-reserve rule, then the selected run), and a fit costs ~0.3 s.
    The key holds the exact training window's values, so a different history is never served a stale model.
    """
    window = series[(series.index >= day - pd.Timedelta(days=cfg.fit_days)) & (series.index < day)]
    digest = hashlib.sha1(np.ascontiguousarray(window.to_numpy(dtype=float)).tobytes())
    digest.update(np.ascontiguousarray(window.index.asi8).tobytes())
    key = (digest.hexdigest(), day, timezone, cfg, kind)
    if key in _FITS:
        _FITS.move_to_end(key)
    else:
        try:
            _FITS[key] = fit_price_model(series, day, timezone, cfg, series=kind)
        except PriceModelError as exc:
            _FITS[key] = exc
        while len(_FITS) > FIT_CACHE_SIZE:
            _FITS.popitem(last=False)
    found = _FITS[key]
    if isinstance(found, PriceModelError):
        raise found
    return found


@register_forecast("blended")
class BlendedForecast(LearnedForecast):
    """Published provider forecasts (where the data carries them) blended with the learned path by horizon."""

    def __init__(self, data: BacktestData, options: ForecastOptions) -> None:
        super().__init__(data, options)
        self.weights: BlendWeights = blend_weights(self.learned.provider_kind)
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
