"""Daily strategy selection: plan with the candidate that would have saved the most on the trailing days.

Why: the learned model's spike-reserve rule was tuned on the months we have; on a regime it never saw (a new
tariff, region or crisis) planning without it, or on yesterday's prices, can save more. No fixed knob can know
that in advance, realised money can. Once a day (at the site's local midnight) every candidate is replayed
through the real planner (the backtest engine, warm tiered LP, 5-minute replans) over the trailing days of
realised prices, load and solar; the site follows the candidate whose trailing savings are highest, but leaves
its current one only when the best beats it by more than the margin (hysteresis: a near tie does not flap).

The same function, :func:`choose`, decides live (the daily ``strategy_selection`` asset, ``defs/strategy.py``)
and walk-forward in the backtest (:func:`walk_forward` over the candidates' shadow runs, then one run that
plans each day with that day's choice: :func:`run_selected`). A shadow run is one continuous simulation per
candidate across the window (its own SOC path), so a backtest costs (candidates + 1) single-strategy runs.

Candidates (:func:`candidates`): ``learned`` (the site's spike-reserve rule), ``learned_no_reserve`` (the same
model, planning on the expected value) and ``persistence`` (yesterday's prices). The trailing window (7 days:
a week holds calm days and the start of a spike episode alike) and the margin (5 % of the current candidate's
savings) were set before the evaluation; the broad walk-forward evaluation of ``benchmarks/bench_price_forecast.py``
reports them against 3 / 5 days and margins 0-20 %.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..timegrid import STEPS_PER_DAY
from .battery import BatterySpec
from .data import BacktestData
from .engine import BacktestConfig, BacktestResult, run_backtest
from .errors import BacktestInputError
from .forecasts import ForecastModel, ForecastOptions, make_forecast, register_forecast
from .learned import LearnedOptions

DEFAULT_CANDIDATE = "learned"
TRAILING_DAYS = 7.0
MARGIN = 0.05
MIN_GAIN_PER_KWH_DAY = 0.05  # $ per kWh of battery per day: 13.5 kWh over 7 days = $4.73 (benchmarks/bench_price_forecast.py)
MIN_DAYS = 2.0


@dataclass(frozen=True)
class SelectionRule:
    """How the choice is made.

    ``trailing_days``: the realised days each candidate is replayed over; ``margin``: the current candidate is
    left only for one whose trailing savings beat it by more than ``margin`` x |its savings|, and by more than
    ``min_gain_per_kwh_day`` $ per kWh of battery per realised day (a floor in the battery's own scale: in a
    calm week every candidate saves little and a relative margin alone switches on cents); ``min_days``: with
    fewer realised days the default candidate is kept (nothing to judge by yet).
    """

    trailing_days: float = TRAILING_DAYS
    margin: float = MARGIN
    min_days: float = MIN_DAYS
    min_gain_per_kwh_day: float = MIN_GAIN_PER_KWH_DAY

    def __post_init__(self) -> None:
        if not 1 <= self.trailing_days <= 60:
            raise BacktestInputError(f"selection trailing_days {self.trailing_days!r}: expected 1..60 days")
        if not 0 <= self.margin <= 1:
            raise BacktestInputError(f"selection margin {self.margin!r}: expected 0..1 (a share of the savings)")
        if not 0 <= self.min_days <= self.trailing_days:
            raise BacktestInputError(f"selection min_days {self.min_days!r}: expected 0..trailing_days")
        if not 0 <= self.min_gain_per_kwh_day <= 1:
            raise BacktestInputError(f"selection min_gain_per_kwh_day {self.min_gain_per_kwh_day!r}: expected "
                                     "0..1 $ per kWh and day")


@dataclass(frozen=True)
class Candidate:
    """One planning strategy: a backtest forecast model and its typed options (None: the model's defaults)."""

    name: str
    forecast: str
    options: LearnedOptions | None = None


def candidates(learned: LearnedOptions) -> tuple[Candidate, ...]:
    """The candidates for a site whose learned model plans with ``learned`` (its rule, history, retail map)."""
    plain = replace(learned, select=False)
    return (Candidate("learned", "learned", plain),
            Candidate("learned_no_reserve", "learned", replace(plain, rule=replace(plain.rule, weight=0.0))),
            Candidate("persistence", "persistence"))


def choose(trailing: Mapping[str, float], current: str | None, rule: SelectionRule = SelectionRule(),
           days_seen: float | None = None, default: str = DEFAULT_CANDIDATE, capacity_kwh: float = 0.0) -> str:
    """The candidate to plan with next, from each candidate's trailing realised savings ($).

    Keeps ``current`` (``default`` when None or no longer a candidate) unless another candidate's savings beat
    it by more than the margin; with fewer than ``rule.min_days`` realised days, ``default``. Ties go to the
    earlier candidate in ``trailing``'s order. Candidates whose savings are not finite are ignored.
    ``capacity_kwh`` scales the rule's absolute floor (``min_gain_per_kwh_day``).
    """
    ok = {k: float(v) for k, v in trailing.items() if v is not None and np.isfinite(v)}
    if not ok or (days_seen is not None and days_seen < rule.min_days):
        return default
    if current not in ok:
        current = default if default in ok else next(iter(ok))
    best = max(ok, key=lambda k: ok[k])  # the first of equals
    floor = rule.min_gain_per_kwh_day * capacity_kwh * (days_seen if days_seen is not None else rule.trailing_days)
    if best != current and ok[best] - ok[current] > max(rule.margin * abs(ok[current]), floor, 0.01):
        return best
    return current


def daily_savings(result: BacktestResult, strategy: str = "lp") -> pd.Series:
    """Savings ($) per local day of one strategy in a backtest result (index: local midnight, site timezone)."""
    iv = result.intervals[result.intervals["strategy"] == strategy]
    tz = result.summary["site_timezone"]
    day = pd.DatetimeIndex(iv["interval_start"]).tz_convert(tz).normalize()
    return iv.groupby(day)["savings"].sum().rename(strategy)


def walk_forward(daily: pd.DataFrame, days: Sequence[pd.Timestamp], rule: SelectionRule = SelectionRule(),
                 default: str = DEFAULT_CANDIDATE, capacity_kwh: float = 0.0) -> pd.Series:
    """The choice for each local day in ``days``, from the candidates' savings on days strictly before it.

    ``daily``: savings per local day (index: local midnight) by candidate (columns, in candidate order); a day
    missing for a candidate counts as not replayed. The choice of day D reads only days in
    ``[D - trailing_days, D)``: what the live asset knows at D's midnight.
    """
    out, current = {}, None
    for day in days:
        past = daily[(daily.index < day) & (daily.index >= day - pd.Timedelta(days=rule.trailing_days))]
        seen = float(past.notna().all(axis=1).sum())
        totals = past.sum(min_count=1).to_dict()
        current = choose(totals, current, rule, days_seen=seen, default=default, capacity_kwh=capacity_kwh)
        out[day] = current
    return pd.Series(out, name="choice", dtype=object)


@dataclass(frozen=True)
class SelectionPlan:
    """The walk-forward choice per local day (``days``: UTC instants of local midnights, sorted) and the
    candidates' options: what the ``selected`` backtest model plans with."""

    candidates: tuple[Candidate, ...]
    days: tuple[pd.Timestamp, ...]
    choices: tuple[str, ...]


@register_forecast("selected")
class SelectedForecast(ForecastModel):
    """Each local day, the prices of that day's chosen candidate (:class:`SelectionPlan`); load and solar the
    backtest's recent-days profile, the same for every candidate."""

    def __init__(self, data: BacktestData, options: ForecastOptions) -> None:
        super().__init__(data, options)
        plan = options.model_options
        if not isinstance(plan, SelectionPlan):
            raise BacktestInputError("forecast 'selected' needs a SelectionPlan (built by backtest.selection)")
        self.plan = plan
        self._models: dict[str, ForecastModel] = {}
        starts = np.array([d.value for d in plan.days], dtype=np.int64)
        k = np.searchsorted(starts, data.index.asi8, side="right") - 1
        names = np.array([*plan.choices, DEFAULT_CANDIDATE], dtype=object)
        self.choice = names[np.where(k >= 0, k, len(plan.choices))]  # before the first day: the default

    def model(self, name: str) -> ForecastModel:
        if name not in self._models:
            c = next(c for c in self.plan.candidates if c.name == name)
            opts = replace(self.options, model_options=c.options, params=())
            self._models[name] = make_forecast(c.forecast, self.data, opts)
        return self._models[name]

    def prices(self, i: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        return self.model(str(self.choice[i])).prices(i, n)

    def load_solar(self, i: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        return self.model("persistence").load_solar(i, n)


def _rule_never_fires(data: BacktestData, cfg: BacktestConfig, options: LearnedOptions | None) -> bool:
    """Whether the spike-reserve rule's gate stays shut over ``data``'s accounted window: then the learned
    model plans on the same prices with and without the rule, and one replay serves both candidates."""
    fc = make_forecast("learned", data, replace(cfg.forecast_options, model_options=options, params=()))
    return not bool(np.asarray(fc.reserve_open)[data.i0:data.i1].any())


def local_days(data: BacktestData) -> list[pd.Timestamp]:
    """The local midnights (site timezone) of the accounted window's days."""
    w = data.window.tz_convert(data.timezone)
    return list(pd.DatetimeIndex(w.normalize().unique()))


def run_choices(data: BacktestData, spec: BatterySpec, cfg: BacktestConfig, cands: Sequence[Candidate],
                choice: pd.Series, on_progress: Callable[[int], None] | None = None) -> BacktestResult:
    """The run that plans each local day with its chosen candidate (``choice``: name by local midnight)."""
    plan = SelectionPlan(tuple(cands), tuple(d.tz_convert("UTC") for d in choice.index), tuple(choice.tolist()))
    final = replace(cfg, forecast="selected",
                    forecast_options=replace(cfg.forecast_options, model_options=plan, params=()))
    result = run_backtest(data, spec, final, on_progress=on_progress)
    result.summary["forecast_model"] = cfg.forecast
    return result


def run_selected(data: BacktestData, spec: BatterySpec, cfg: BacktestConfig, learned: LearnedOptions,
                 rule: SelectionRule | None = None,
                 on_progress: Callable[[int], None] | None = None) -> BacktestResult:
    """Walk-forward selection over ``data``'s accounted window: one shadow run per candidate from
    ``rule.trailing_days`` before the window (as far as the data reaches), the choice per day, then the run
    that plans each day with its choice. The summary gains ``selection`` (the rule, the choice per day, the
    days per candidate and each candidate's own savings and capture over the window)."""
    rule = rule or SelectionRule()
    cands = candidates(learned)
    back = int(round(rule.trailing_days * STEPS_PER_DAY))
    lo = max(0, data.i0 - back)
    shadow_data = data.slice(0, data.n, lo, data.i1)
    shadow_cfg = replace(cfg, strategies=("lp",), progress=False, bound=False)
    daily = {}
    quiet = _rule_never_fires(shadow_data, cfg, cands[0].options)
    for c in cands:
        if c.name == "learned_no_reserve" and quiet:  # the same prices at every step: the same replay
            daily[c.name] = daily["learned"].rename(c.name)
            continue
        opts = replace(cfg.forecast_options, model_options=c.options, params=())
        res = run_backtest(shadow_data, spec, replace(shadow_cfg, forecast=c.forecast, forecast_options=opts))
        daily[c.name] = daily_savings(res)
    table = pd.DataFrame(daily)[[c.name for c in cands]]
    days = local_days(data)
    choice = walk_forward(table, days, rule, capacity_kwh=spec.capacity_kwh)
    result = run_choices(data, spec, cfg, cands, choice, on_progress)
    counts = choice.value_counts()
    bound = result.summary["baseline_cost"] - result.summary["perfect_foresight_cost"]
    own = {name: float(table.loc[table.index >= days[0], name].sum()) for name in table.columns}
    result.summary["selection"] = {
        "trailing_days": rule.trailing_days, "margin": rule.margin, "min_days": rule.min_days,
        "min_gain_per_kwh_day": rule.min_gain_per_kwh_day,
        "candidates": {c.name: {"savings": round(own[c.name], 4),
                                "capture_ratio": round(own[c.name] / bound, 4) if bound > 1e-9 else None,
                                "days_chosen": int(counts.get(c.name, 0))} for c in cands},
        "choices": {d.strftime("%Y-%m-%d"): name for d, name in choice.items()},
        "daily_savings": {name: {d.strftime("%Y-%m-%d"): round(float(v), 4) for d, v in col.dropna().items()}
                          for name, col in table.items()},
    }
    return result
