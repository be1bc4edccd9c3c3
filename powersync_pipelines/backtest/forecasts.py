"""Forecast models the replay plans with: what the live system would have known at each 5-minute step.

A model is a class with ``prices(i, n)`` -> (import, export) and ``load_solar(i, n)`` -> (load, solar) for the
``n`` slots starting at slot ``i`` of a :class:`BacktestData`, built once per replay from the data and a
:class:`ForecastOptions`. It sees the whole series (that is how ``perfect`` works), so every other model must
only read slots ``<= i`` (the current interval's price is known: the NEM dispatch price is set at its start).

Built in: ``perfect`` (the real future), ``persistence`` (prices: the latest same time of day not after now,
i.e. yesterday's for the next 24 h; load/solar: the mean of the same time on the last ``load_days`` days,
corrected by the last half hour's measurements, :mod:`powersync_pipelines.forecasts.nowcast`),
``noisy`` (perfect plus seeded noise, see :class:`NoisyForecast`) and ``provider`` (published forecasts the
price data carries, persistence beyond them).

Pluggable: ``register_forecast("name")`` on a subclass of :class:`ForecastModel`. Models with heavier
dependencies (the learned price model, :mod:`.learned`; the daily strategy selection, :mod:`.selection`)
register from a module named in ``PLUGIN_MODULES``; it is imported on first lookup, also inside worker
processes.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..forecasts.nowcast import (
    LOAD_NOWCAST_HOURS,
    RECENT_STEPS,
    SOLAR_NOWCAST_HOURS,
    load_nowcast,
    solar_nowcast,
)
from ..timegrid import STEPS_PER_DAY
from .data import BacktestData
from .errors import BacktestInputError
from .inputs import persistence_source

PLUGIN_MODULES = ("powersync_pipelines.backtest.learned", "powersync_pipelines.backtest.selection")


@dataclass(frozen=True)
class ForecastOptions:
    noise: float = 0.2  # noisy: relative size of the error at >= 1 h ahead
    seed: int = 0
    load_days: int = 3  # persistence: days averaged for the load/solar profile
    # The profile corrected by the last half hour (forecasts.nowcast): fading time in hours, None / 0: off.
    load_nowcast_hours: float | None = LOAD_NOWCAST_HOURS
    solar_nowcast_hours: float | None = SOLAR_NOWCAST_HOURS
    params: tuple[tuple[str, object], ...] = ()  # free-form text options for plugin models (hashable)
    # A plug-in model's typed options, built once by the caller (e.g. ``learned.LearnedOptions``); None: the
    # model reads ``params``.
    model_options: object | None = None

    def param(self, name: str, default: object = None) -> object:
        return dict(self.params).get(name, default)


class ForecastModel:
    """Base: perfect knowledge of everything (subclasses override what they do not know)."""

    name = "perfect"

    def __init__(self, data: BacktestData, options: ForecastOptions) -> None:
        self.data = data
        self.options = options

    def _real(self, arr: np.ndarray, i: int, n: int) -> np.ndarray:
        """The real values of slots i..i+n-1; beyond the data end, the last known day repeats."""
        end = i + n
        if end <= len(arr):
            return arr[i:end]
        idx = np.arange(i, end)
        return arr[persistence_source(idx, len(arr) - 1, len(arr))]

    def prices(self, i: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        return self._real(self.data.import_price, i, n), self._real(self.data.export_price, i, n)

    def load_solar(self, i: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        return self._real(self.data.load_kw, i, n), self._real(self.data.solar_kw, i, n)


FORECASTS: dict[str, type[ForecastModel]] = {}


def register_forecast(name: str) -> Callable[[type[ForecastModel]], type[ForecastModel]]:
    def deco(cls: type[ForecastModel]) -> type[ForecastModel]:
        cls.name = name
        FORECASTS[name] = cls
        return cls

    return deco


def _load_plugins() -> None:
    for mod in PLUGIN_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:  # the plugin exists but is broken: say so
                raise


def available_forecasts() -> list[str]:
    _load_plugins()
    return sorted(FORECASTS)


def make_forecast(name: str, data: BacktestData, options: ForecastOptions | None = None) -> ForecastModel:
    if name not in FORECASTS:
        _load_plugins()
    try:
        cls = FORECASTS[name]
    except KeyError:
        raise BacktestInputError(f"unknown forecast model {name!r} (one of {', '.join(sorted(FORECASTS))})") from None
    return cls(data, options or ForecastOptions())


register_forecast("perfect")(ForecastModel)


def recent_days_profile(arr: np.ndarray, i: int, n: int, days: int) -> np.ndarray:
    """Mean of the same time of day over the ``days`` most recent days strictly before slot ``i``'s day-offset."""
    idx = np.arange(i, i + n)
    ahead = idx - i
    first = np.maximum(1, -(-ahead // STEPS_PER_DAY))  # 1 day back for the next 24 h, 2 beyond
    acc = np.zeros(n)
    cnt = np.zeros(n)
    for k in range(days):
        src = idx - (first + k) * STEPS_PER_DAY
        ok = src >= 0
        acc[ok] += arr[src[ok]]
        cnt[ok] += 1
    fallback = arr[max(i - 1, 0)]  # no history at all (the data's first day): the last value
    return np.where(cnt > 0, acc / np.maximum(cnt, 1), fallback)


@register_forecast("persistence")
class PersistenceForecast(ForecastModel):
    """Yesterday's prices at the same time (the day before for 24-48 h); a recent-days load/solar profile."""

    def prices(self, i: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        src = persistence_source(np.arange(i, i + n), i, len(self.data.import_price))
        return self.data.import_price[src], self.data.export_price[src]

    def load_solar(self, i: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        o = self.options
        load = recent_days_profile(self.data.load_kw, i, n, o.load_days)
        solar = recent_days_profile(self.data.solar_kw, i, n, o.load_days)
        if i < STEPS_PER_DAY + RECENT_STEPS:  # the profile had no day of history for the last half hour yet
            return load, solar
        lo = i - RECENT_STEPS  # the last half hour before now (the current interval is not measured yet)
        return (load_nowcast(load, self.data.load_kw[lo:i], recent_days_profile(self.data.load_kw, lo, RECENT_STEPS,
                                                                                o.load_days), o.load_nowcast_hours),
                solar_nowcast(solar, self.data.solar_kw[lo:i], recent_days_profile(self.data.solar_kw, lo, RECENT_STEPS,
                                                                                   o.load_days), o.solar_nowcast_hours))


@register_forecast("noisy")
class NoisyForecast(ForecastModel):
    """The real future plus seeded noise that grows from zero now to full size one hour ahead.

    Price error per target slot = g(h) · noise · (|p|·z1 + m·z2), with m the median |import price| of the data
    and z1, z2 standard normals drawn once per target slot (a forecast for 18:00 is wrong the same way at
    every issue time, as real forecasts are). The same $/kWh error hits import and export (it is an error
    in the wholesale price). Load and solar get a relative error g(h)·noise·z, clipped at zero.
    """

    def __init__(self, data: BacktestData, options: ForecastOptions) -> None:
        super().__init__(data, options)
        rng = np.random.default_rng(options.seed)
        n = data.n + 2 * STEPS_PER_DAY
        self._z = rng.standard_normal((4, n))
        self._m = float(np.median(np.abs(data.import_price))) if data.n else 0.0
        self._g = np.minimum(1.0, np.sqrt(np.arange(2 * STEPS_PER_DAY + 1) / 12.0))

    def _err(self, i: int, n: int, row: int) -> np.ndarray:
        return self._g[:n] * self._z[row, i:i + n] * self.options.noise

    def prices(self, i: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        imp, exp = super().prices(i, n)
        err = self._err(i, n, 0) * np.abs(imp) + self._err(i, n, 1) * self._m
        return imp + err, exp + err

    def load_solar(self, i: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        load, solar = super().load_solar(i, n)
        return (np.maximum(load * (1 + self._err(i, n, 2)), 0.0),
                np.maximum(solar * (1 + self._err(i, n, 3)), 0.0))


def index_published(data: BacktestData) -> tuple[list, list[tuple[np.ndarray, np.ndarray, np.ndarray]], np.ndarray]:
    """Published forecasts by issue time: (issue times, per issue (grid slot of each forecast interval, -1 off
    the grid; import; export), grid slot of each issue) — what forecast models look up at each replan."""
    issued = sorted(data.published)
    pos = {t: k for k, t in enumerate(data.index)}
    frames = []
    for t in issued:
        f = data.published[t]
        k = np.array([pos.get(ts, -1) for ts in f.index])
        frames.append((k, f["import_price"].to_numpy(float), f["export_price"].to_numpy(float)))
    slots = np.searchsorted(data.index, issued) if issued else np.array([], int)
    return issued, frames, slots


@register_forecast("provider")
class ProviderForecast(PersistenceForecast):
    """The price forecast the provider had published at each step (e.g. Amber captures), persistence beyond.

    ``data.published`` maps issue time -> frame of ``import_price``/``export_price`` by interval start; the
    latest issue not after the step's time is used where it covers a slot.
    """

    def __init__(self, data: BacktestData, options: ForecastOptions) -> None:
        super().__init__(data, options)
        if not data.published:
            raise BacktestInputError("forecast 'provider': the price data carries no published forecasts")
        self._issued, self._frames, self._issue_slots = index_published(data)

    def prices(self, i: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        imp, exp = (a.copy() for a in super().prices(i, n))
        j = int(np.searchsorted(self._issue_slots, i, side="right")) - 1
        if j >= 0:
            k, fi, fe = self._frames[j]
            sel = (k > i) & (k < i + n)  # the current slot stays the real (known) price
            imp[k[sel] - i], exp[k[sel] - i] = fi[sel], fe[sel]
        return imp, exp
