"""A price model learned from stored history: a seasonal profile plus a short-term deviation model, with quantiles.

Why this shape: a battery earns its money from *when* prices are high or low over the next hours, and the
realised savings depend mostly on (a) the daily shape (cheap middays, dear evenings), (b) what the price
just did (a spike in progress, a high-price afternoon) and (c) how likely a spike is. So:

* **profile** ``b(daytype, local time of day)``: an exponentially day-weighted mean over ``fit_days`` of
  history, winsorised at the ``profile_clip_q`` quantile (one capped interval must not make a 5-minute slot
  look like a spike every day), smoothed over neighbouring slots; weekdays and weekends separately, the
  weekend shrunk towards the weekday profile when few weekend days are known.
* **deviation** ``d = x - b``: for every horizon step ``h`` a ridge regression of ``d(t+h)`` on features known
  at ``t`` — the current deviation, its last-hour mean, its last-day median (the level without the spikes),
  the last hour's volatility, a spike-in-progress indicator and the share of the last day spent spiking
  (recent spikes) — fitted on the same window. A spike in progress therefore raises the next
  hours by what history says spikes persist, decaying with the horizon. The coefficients differ by the
  issue's local time of day (2-hour blocks, each shrunk towards the pooled fit): what a deviation at 17:00
  says about the evening is not what one at 11:00 says about the afternoon.
* **quantiles**: empirical residual quantiles per (regime, horizon bucket, local hour of the target), so
  P90 is high where spikes happened at that hour of day and horizon, and higher still the day after a
  spike (regime "hot": a spike in the last 24 h; spikes cluster).

Everything is fitted from ``history[history.index < as_of]`` only (:func:`fit_price_model` truncates
itself); a forecast issued at ``now`` additionally reads the realised values up to and including ``now``
(the NEM publishes the current interval's price at its start). Units are those of the series (``$/MWh``
for AEMO RRP); nothing here knows about retail prices (see :mod:`.price_mapping`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd

from ..timegrid import HORIZON_STEPS, STEP, STEPS_PER_DAY

QUANTILES = (0.1, 0.5, 0.9)
# Horizon buckets (in 5-minute steps) for residual quantiles: 0-1 h, 1-3 h, 3-6 h, 6-12 h, 12-24 h, 24-48 h.
BUCKET_EDGES = (0, 12, 36, 72, 144, 288, 10**9)
FEATURES = ("intercept", "dev_now", "dev_1h", "dev_median_24h", "vol_1h", "spike_now", "spike_share_24h")
MODEL_KIND = "profile_ar_quantile"
MODEL_VERSION = 4  # 4: coefficients per block of the issue's time of day (coef is 3-d)


class PriceModelError(ValueError):
    """The history cannot support a model (too short, not on the 5-minute grid...); the message says why."""


def price_scale(series: str) -> float:
    """$/MWh -> the series' units: 1 for ``rrp``, 1/1000 for a $/kWh series (``import_price``)."""
    return 1.0 if series == "rrp" else 1 / 1000


@dataclass(frozen=True)
class PriceModelConfig:
    """Knobs chosen by captured money on months the benchmark never evaluates (see the benchmark note)."""

    fit_days: int = 56
    min_days: float = 2.0
    profile_half_life_days: float = 14.0
    profile_clip_q: float = 0.99
    smooth_slots: int = 2  # +- slots averaged in the profile (5 slots = 25 min)
    weekend_shrink_days: float = 4.0
    # Price knobs (dev_clip, target_clip, spike_level) are in $/MWh; a model of a $/kWh series (import_price)
    # scales them by 1/1000 when it is fitted and stores the scaled config (see for_series).
    dev_clip: float = 3000.0  # deviation feature clip
    # Regression target clip (None: 2 x dev_clip). A tighter clip makes the mean path a more robust fit of the
    # level: with 2 x dev_clip a few spike intervals dominate the least squares and the level adapts slowly
    # after a spiky month (2025-07 window 0.10 -> 0.22 at 2000); 300 also fixes the level but stops carrying a
    # spike in progress into the next hours. 2000 chosen on the tuning windows and months (figures:
    # benchmarks/bench_price_forecast.py).
    target_clip: float | None = 2000.0
    # Apply ``target_clip`` only from this many hours ahead (None: every horizon). Below it the wide default
    # clip keeps a spike in progress carried into the next hours; beyond it the tight clip keeps the level robust.
    target_clip_after_hours: float | None = None
    spike_level: float = 300.0  # "spike in progress" indicator threshold
    # Residual quantiles weighted by the issue time's age (half-life in days; None: all days alike), so a
    # calm fortnight after a spiky month lowers the P90 that drives the spike-reserve rule.
    quantile_half_life_days: float | None = None
    ridge: float = 1.0
    horizon: int = HORIZON_STEPS
    quantile_stride: int = 6  # every 6th issue time (30 min) feeds the residual quantiles
    # The regression per block of the issue's local time of day (12 blocks of 2 h; 1: one pooled fit): how far a
    # deviation carries depends on when it happens (a spike at 17:00 runs into the evening peak, a midday one
    # fades), and one pooled fit averages that away. Each block's fit is shrunk towards the pooled fit by a
    # prior worth ``block_prior_days`` days of samples (None: no shrinkage), since a block sees only 1/12 of the
    # window. Chosen on the tuning windows and months (figures: benchmarks/bench_price_forecast.py).
    issue_blocks: int = 12
    block_prior_days: float | None = 10.0

    def __post_init__(self) -> None:
        if not 1 <= self.issue_blocks <= STEPS_PER_DAY:
            raise PriceModelError(f"issue_blocks {self.issue_blocks}: expected 1..{STEPS_PER_DAY} blocks a day")
        if self.block_prior_days is not None and self.block_prior_days < 0:
            raise PriceModelError(f"block_prior_days {self.block_prior_days}: expected >= 0 days or None")

    def for_series(self, series: str) -> PriceModelConfig:
        """The config in the series' own units: as is for ``rrp`` ($/MWh), price knobs / 1000 for $/kWh."""
        k = price_scale(series)
        if k == 1.0:
            return self
        return replace(self, dev_clip=self.dev_clip * k, spike_level=self.spike_level * k,
                       target_clip=None if self.target_clip is None else self.target_clip * k)

    def key(self) -> str:
        d = asdict(self)
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]


@dataclass
class PriceForecastPath:
    """One issued forecast on the 5-minute grid: ``mean`` (expected value), ``p10``/``p50``/``p90``."""

    index: pd.DatetimeIndex
    mean: np.ndarray
    p10: np.ndarray
    p50: np.ndarray
    p90: np.ndarray

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({"mean": self.mean, "p10": self.p10, "p50": self.p50, "p90": self.p90}, index=self.index)


@dataclass
class FittedPriceModel:
    """A fitted model: plain arrays, serialisable (:meth:`to_dict`), versioned by config and training window."""

    timezone: str
    as_of: pd.Timestamp  # fitted on history strictly before this instant
    train_start: pd.Timestamp
    train_end: pd.Timestamp  # last interval start used (< as_of)
    n_train: int
    profile: np.ndarray  # (2, 288): weekday / weekend by local 5-minute slot
    coef: np.ndarray  # (issue_blocks, horizon, len(FEATURES))
    resid_q: np.ndarray  # (2 regimes calm/hot, len(QUANTILES), n_buckets, 24)
    config: PriceModelConfig = field(default_factory=PriceModelConfig)
    stats: dict = field(default_factory=dict)
    series: str = "rrp"  # what was modelled: "rrp" ($/MWh) or "import_price" ($/kWh)
    code_version: int = MODEL_VERSION  # the code that fitted it (a stored older model keeps its own)

    @property
    def version(self) -> str:
        """Identifies the model: kind, code version, config and training window."""
        return (f"{MODEL_KIND}-v{self.code_version}-{self.config.key()}-"
                f"{self.train_start.strftime('%Y%m%dT%H%M')}-{self.train_end.strftime('%Y%m%dT%H%M')}")

    # -- forecasting ---------------------------------------------------------------------------------
    def baseline(self, index: pd.DatetimeIndex) -> np.ndarray:
        daytype, slot, _ = local_keys(index, self.timezone)
        return self.profile[daytype, slot]

    def forecast(self, now: pd.Timestamp, recent: pd.Series | np.ndarray, horizon: int | None = None) -> PriceForecastPath:
        """The path for ``horizon`` slots starting at ``now`` (slot 0 = the current, known interval).

        ``recent``: realised values ending with the interval starting at ``now`` (a Series indexed by interval
        start is checked for that; an array is taken as such). At least one value; a day of them is best.
        """
        n = horizon or self.config.horizon
        now = pd.Timestamp(now)
        if isinstance(recent, pd.Series):
            if len(recent) == 0 or recent.index[-1] != now:
                last = recent.index[-1].isoformat() if len(recent) else "nothing"
                raise PriceModelError(f"recent values must end at now={now.isoformat()} (they end at {last})")
            vals = recent.to_numpy(dtype=float)
        else:
            vals = np.asarray(recent, dtype=float)
        if len(vals) == 0:
            raise PriceModelError("forecast needs at least the current interval's value")
        vals = vals[-STEPS_PER_DAY:]
        hist_idx = pd.date_range(end=now, periods=len(vals), freq=STEP)
        dev_hist = vals - self.baseline(hist_idx)
        index = pd.date_range(now, periods=n, freq=STEP)
        daytype, slot, hour = local_keys(index, self.timezone)
        feats = feature_vector(dev_hist, vals, self.config)
        return self.path(index, daytype, slot, hour, feats, float(vals[-1]))

    def path(self, index: pd.DatetimeIndex | None, daytype: np.ndarray, slot: np.ndarray, hour: np.ndarray,
             feats: np.ndarray, current: float) -> PriceForecastPath:
        """The fast path (the backtest precomputes the local keys and features)."""
        n = len(slot)
        base = self.profile[daytype, slot]
        full = self.coef[issue_block(int(slot[0]), len(self.coef))]
        coef = full[:n] if n <= len(full) else np.vstack([full, np.repeat(full[-1:], n - len(full), 0)])
        mean = base + coef @ feats
        buckets = horizon_buckets(n)
        regime = 1 if feats[6] > 0 else 0  # any spike in the last 24 h: the "hot" residual quantiles
        q = self.resid_q[regime][:, buckets, hour]  # (3, n)
        lo, mid, hi = mean + q[0], mean + q[1], mean + q[2]
        mean[0] = lo[0] = mid[0] = hi[0] = current  # the current interval is known
        stack = np.sort(np.vstack([lo, mid, hi]), axis=0)
        return PriceForecastPath(index=index if index is not None else pd.DatetimeIndex([]), mean=mean,
                                 p10=stack[0], p50=stack[1], p90=stack[2])

    # -- persistence ---------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "kind": MODEL_KIND, "code_version": self.code_version, "version": self.version, "timezone": self.timezone,
            "as_of": self.as_of.isoformat(), "train_start": self.train_start.isoformat(),
            "train_end": self.train_end.isoformat(), "n_train": self.n_train, "config": asdict(self.config),
            "profile": self.profile.round(6).tolist(), "coef": self.coef.round(8).tolist(),
            "resid_q": self.resid_q.round(6).tolist(), "stats": self.stats, "series": self.series,
        }

    @classmethod
    def from_dict(cls, d: dict) -> FittedPriceModel:
        if d.get("kind") != MODEL_KIND:
            raise PriceModelError(f"stored model kind {d.get('kind')!r} is not {MODEL_KIND!r}")
        coef, config = np.asarray(d["coef"], float), dict(d["config"])
        config.pop("scenario_days", None)  # a knob of models stored before it left (never changed the fit)
        if coef.ndim == 2:  # code version <= 3: one pooled regression, fitted before the block knobs existed
            coef = coef[None]
            config.update(issue_blocks=1, block_prior_days=None)
        return cls(
            timezone=d["timezone"], as_of=pd.Timestamp(d["as_of"]), train_start=pd.Timestamp(d["train_start"]),
            train_end=pd.Timestamp(d["train_end"]), n_train=int(d["n_train"]),
            profile=np.asarray(d["profile"], float), coef=coef,
            resid_q=np.asarray(d["resid_q"], float), config=PriceModelConfig(**config), stats=d.get("stats", {}),
            series=d.get("series", "rrp"), code_version=int(d.get("code_version", MODEL_VERSION)),
        )


# ---------------------------------------------------------------------------------------------------------
def local_keys(index: pd.DatetimeIndex, timezone: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(daytype 0 weekday / 1 weekend, local 5-minute slot 0..287, local hour 0..23) per UTC interval start."""
    local = index.tz_convert(timezone)
    slot = local.hour * 12 + local.minute // 5
    daytype = np.asarray(local.dayofweek >= 5, dtype=int)
    return daytype, np.asarray(slot, dtype=int), np.asarray(local.hour, dtype=int)


def horizon_buckets(n: int) -> np.ndarray:
    return np.searchsorted(np.asarray(BUCKET_EDGES[1:]), np.arange(n), side="right")


def feature_vector(dev_hist: np.ndarray, values: np.ndarray, cfg: PriceModelConfig) -> np.ndarray:
    """The features known at the issue time from the deviations and values up to now (last = now)."""
    d = np.clip(dev_hist, -cfg.dev_clip, cfg.dev_clip)
    last_hour = d[-12:]
    day = d[-STEPS_PER_DAY:]
    spikes = float(np.mean(np.asarray(values[-STEPS_PER_DAY:]) >= cfg.spike_level))
    return np.array([1.0, d[-1], last_hour.mean(), float(np.median(day)), last_hour.std(),
                     float(values[-1] >= cfg.spike_level), spikes])


def feature_matrix(dev: np.ndarray, x: np.ndarray, cfg: PriceModelConfig) -> np.ndarray:
    """:func:`feature_vector` for every position of a contiguous series (rolling, causal)."""
    d = np.clip(dev, -cfg.dev_clip, cfg.dev_clip)
    n = len(d)
    c1 = np.concatenate([[0.0], np.cumsum(d)])
    c2 = np.concatenate([[0.0], np.cumsum(d * d)])
    pos = np.arange(1, n + 1)
    lo1 = np.maximum(pos - 12, 0)
    m1 = (c1[pos] - c1[lo1]) / (pos - lo1)
    v1 = np.sqrt(np.maximum((c2[pos] - c2[lo1]) / (pos - lo1) - m1 * m1, 0.0))
    med24 = pd.Series(d).rolling(STEPS_PER_DAY, min_periods=1).median().to_numpy()
    hot = (x >= cfg.spike_level).astype(float)
    spikes = pd.Series(hot).rolling(STEPS_PER_DAY, min_periods=1).mean().to_numpy()
    return np.column_stack([np.ones(n), d, m1, med24, v1, hot, spikes])


def fit_price_model(history: pd.Series, as_of: pd.Timestamp, timezone: str,
                    config: PriceModelConfig | None = None, series: str = "rrp") -> FittedPriceModel:
    """Fit on ``history`` (values by UTC interval start, 5-minute grid) strictly before ``as_of``.

    Short gaps are forward-filled; the window is the last ``fit_days`` days before ``as_of``.
    """
    cfg = (config or PriceModelConfig()).for_series(series)
    as_of = pd.Timestamp(as_of)
    if history.index.tz is None:
        raise PriceModelError("price history index must be timezone-aware (UTC interval starts)")
    lo = as_of - pd.Timedelta(days=cfg.fit_days)
    h = history[(history.index >= lo) & (history.index < as_of)].dropna()
    if len(h) < cfg.min_days * STEPS_PER_DAY:
        raise PriceModelError(
            f"price history before {as_of.isoformat()} has {len(h)} intervals; the model needs at least "
            f"{cfg.min_days:g} days ({int(cfg.min_days * STEPS_PER_DAY)} 5-minute intervals)"
        )
    grid = pd.date_range(h.index[0].floor("5min"), h.index[-1].floor("5min"), freq=STEP)
    s = h[~h.index.duplicated(keep="last")].reindex(grid, method="ffill")
    x = s.to_numpy(dtype=float)
    daytype, slot, hour = local_keys(grid, timezone)
    profile = _profile(x, grid, daytype, slot, as_of, cfg)
    dev = x - profile[daytype, slot]
    feats = feature_matrix(dev, x, cfg)
    coef = _fit_coefficients(feats, dev, slot, cfg)
    resid_q = _residual_quantiles(feats, dev, slot, hour, coef, cfg)
    stats = {"mean": float(x.mean()), "std": float(x.std()), "p99": float(np.quantile(x, 0.99)),
             "max": float(x.max()), "min": float(x.min())}
    return FittedPriceModel(timezone=timezone, as_of=as_of, train_start=grid[0], train_end=grid[-1], n_train=len(x),
                            profile=profile, coef=coef, resid_q=resid_q, config=cfg, stats=stats,
                            series=series)


def _profile(x: np.ndarray, grid: pd.DatetimeIndex, daytype: np.ndarray, slot: np.ndarray, as_of: pd.Timestamp,
             cfg: PriceModelConfig) -> np.ndarray:
    hi = float(np.quantile(x, cfg.profile_clip_q))
    lo = float(np.quantile(x, 1 - cfg.profile_clip_q))
    xc = np.clip(x, lo, hi)
    age_days = ((as_of - grid) / pd.Timedelta(days=1)).to_numpy()
    w = 0.5 ** (age_days / cfg.profile_half_life_days)
    out = np.zeros((2, STEPS_PER_DAY))
    wsum = np.zeros((2, STEPS_PER_DAY))
    np.add.at(out, (daytype, slot), w * xc)
    np.add.at(wsum, (daytype, slot), w)
    # Circular smoothing over +- smooth_slots, applied to sums and weights alike.
    k = cfg.smooth_slots
    if k > 0:
        out = sum(np.roll(out, j, axis=1) for j in range(-k, k + 1))
        wsum = sum(np.roll(wsum, j, axis=1) for j in range(-k, k + 1))
    overall = np.where(wsum.sum(axis=0) > 0, out.sum(axis=0) / np.maximum(wsum.sum(axis=0), 1e-12), float(xc.mean()))
    prof = np.where(wsum > 0, out / np.maximum(wsum, 1e-12), overall)
    # Shrink weekends towards weekdays by how many weekend days are known (in weighted-day units).
    we_days = wsum[1].mean() * (2 * k + 1) ** -1 if k > 0 else wsum[1].mean()
    alpha = we_days / (we_days + cfg.weekend_shrink_days)
    prof[1] = prof[0] + alpha * (prof[1] - prof[0])
    return prof


def _fit_coefficients(feats: np.ndarray, dev: np.ndarray, slot: np.ndarray, cfg: PriceModelConfig) -> np.ndarray:
    """Ridge regressions of ``dev[t+h]`` on ``feats[t]`` for every h: (issue_blocks, horizon, features).

    Features are scaled and the intercept is unpenalised. With several blocks, block b is fitted on the issue
    times in that block of the local day, shrunk towards the pooled coefficients by a Gaussian prior with the
    pooled per-sample Gram matrix times ``block_prior_days`` days of samples (the block's own samples then
    outweigh the prior in proportion to how many it has).
    """
    n, k = feats.shape
    wide = cfg.dev_clip * 2
    clip = wide if cfg.target_clip is None else cfg.target_clip
    y = np.clip(dev, -clip, clip)
    # Horizons below split are fitted on the wide clip (spike persistence), the rest on target_clip (level).
    split = 0 if cfg.target_clip_after_hours is None else int(round(cfg.target_clip_after_hours * 12))
    scale = feats.std(axis=0)
    scale[0] = 1.0
    scale[scale < 1e-9] = 1.0
    f = feats / scale
    # The penalty scales with the whole window, so a block (1/issue_blocks of it) is regularised harder.
    pen = np.diag(np.r_[0.0, np.full(k - 1, cfg.ridge * max(n, 1) * 1e-3)])

    hs = np.arange(cfg.horizon)
    m = n - hs  # samples with a target h steps ahead
    fitted = (m >= 2 * k) & (hs > 0)
    targets = (np.clip(dev, -wide, wide), y) if split > 0 else (y,)

    def gram_sums(fb: np.ndarray) -> np.ndarray:
        """Cumulative Gram matrices: entry m is sum_{t < m} f_t f_t^T (A_h is entry n - h)."""
        return np.concatenate([np.zeros((1, k, k)), np.cumsum(fb[:, :, None] * fb[:, None, :], axis=0)])

    def solve(fb: np.ndarray, prior: np.ndarray | None = None, prior_gram: np.ndarray | None = None,
              rows: np.ndarray | None = None, fallback: np.ndarray | None = None) -> np.ndarray:
        # b_h = sum_{t < n-h} f_t y_{t+h} for all h at once by FFT cross-correlation (a loop of matrix-vector
        # products took 70 % of a 12-block fit).
        cum = gram_sums(fb)
        b = [_lagged_products(fb, t, cfg.horizon) for t in targets]
        # a block fits a horizon only with enough of its own issue times before n - h
        ok = fitted if rows is None else fitted & (np.r_[0, np.cumsum(rows)][np.maximum(m, 0)] >= 2 * k)
        rhs = np.where((hs < split)[:, None], b[0], b[-1])[ok]
        a = cum[m[ok]] + pen
        if prior is not None:
            a = a + prior_gram[ok]
            rhs = rhs + np.einsum("hij,hj->hi", prior_gram[ok], prior[ok])
        coef = np.zeros((cfg.horizon, k))
        coef[ok] = np.linalg.solve(a, rhs[..., None])[..., 0]
        if fallback is None:  # a horizon too long for the window keeps the last fitted one's coefficients
            coef = coef[np.maximum.accumulate(np.where(ok, hs, 0))]
        else:  # a block short of issue times there takes the pooled fit's
            coef[~ok] = fallback[~ok]
        coef[0] = 0.0
        coef[0, 1] = 1.0  # h = 0 is the known current value (overridden in forecasts anyway)
        return coef

    pooled = solve(f)
    if cfg.issue_blocks == 1:
        return (pooled / scale)[None]
    block = issue_block(slot, cfg.issue_blocks)
    prior = prior_gram = None
    if cfg.block_prior_days is not None:  # precision: the pooled per-sample Gram by horizon x the prior's samples
        prior, prior_gram = pooled, np.zeros((cfg.horizon, k, k))
        prior_gram[fitted] = (gram_sums(f)[m[fitted]] / m[fitted][:, None, None]
                              * (cfg.block_prior_days * STEPS_PER_DAY))
    return np.stack([solve(f * (block == b)[:, None], prior, prior_gram, block == b, pooled) / scale
                     for b in range(cfg.issue_blocks)])


def _lagged_products(f: np.ndarray, y: np.ndarray, horizon: int) -> np.ndarray:
    """(horizon, k): row h is sum over t < n-h of f[t] * y[t+h] (a cross-correlation, by FFT)."""
    n = len(y)
    size = 1 << (2 * n - 1).bit_length()
    spec = np.conj(np.fft.rfft(f, size, axis=0)) * np.fft.rfft(y, size)[:, None]
    out = np.fft.irfft(spec, size, axis=0)[:horizon]
    return np.pad(out, ((0, max(horizon - len(out), 0)), (0, 0)))


def issue_block(slot: np.ndarray | int, blocks: int) -> np.ndarray | int:
    """The block of the local day (0..blocks-1) a 5-minute slot falls in: picks the regression coefficients."""
    return slot * blocks // STEPS_PER_DAY


def _predict(feats_t: np.ndarray, slot_t: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """(T, H) deviation forecasts for issue rows ``feats_t`` at local slots ``slot_t``; ``coef`` (blocks, H, k)."""
    block = issue_block(slot_t, len(coef))
    out = np.zeros((len(feats_t), coef.shape[1]))
    for b in np.unique(block):
        rows = block == b
        out[rows] = feats_t[rows] @ coef[b].T
    return out


def _residual_quantiles(feats: np.ndarray, dev: np.ndarray, slot: np.ndarray, hour: np.ndarray, coef: np.ndarray,
                        cfg: PriceModelConfig) -> np.ndarray:
    """Residual quantiles per (regime, horizon bucket, local hour of the target), on sampled issue times.

    Regime 1 ("hot"): the issue time had a spike (>= ``spike_level``) in the last 24 h; spikes cluster, so
    the upper quantiles after a spike day are far higher than after a calm one. A (regime, bucket, hour)
    cell with fewer than 20 samples borrows the calm regime's value (hot) or the bucket's pooled value.
    """
    n = len(dev)
    horizon = coef.shape[1]
    nb = len(BUCKET_EDGES) - 1
    t = np.arange(0, n, max(cfg.quantile_stride, 1))
    hs = np.arange(1, horizon, 3)
    pred = _predict(feats[t], slot[t], coef[:, hs])  # (T, H')
    tgt = t[:, None] + hs[None, :]
    ok = (tgt < n).ravel()
    safe = np.minimum(tgt, n - 1)
    resid = (dev[safe] - pred).ravel()[ok]
    regime = np.repeat((feats[t, 6] > 0).astype(int)[:, None], len(hs), axis=1)
    cells = nb * 24
    group = (regime * cells + horizon_buckets(horizon)[hs][None, :] * 24 + hour[safe]).ravel()[ok]
    out = np.zeros((2, len(QUANTILES), nb, 24))
    if len(resid) == 0:
        return out
    hl = cfg.quantile_half_life_days
    weight = None
    if hl is not None and hl > 0:  # the issue time's age in days, counted back from the window's end
        age = np.repeat(((n - 1 - t) / STEPS_PER_DAY)[:, None], len(hs), axis=1).ravel()[ok]
        weight = 0.5 ** (age / hl)
    by_value = np.argsort(resid)
    order = by_value[np.argsort(group[by_value], kind="stable")]
    r_sorted, g_sorted = resid[order], group[order]
    w_sorted = None if weight is None else weight[order]
    keys = np.arange(2 * cells)
    starts = np.searchsorted(g_sorted, keys, side="left")
    ends = np.searchsorted(g_sorted, keys, side="right")
    qs = np.asarray(QUANTILES)
    everything = np.quantile(resid, QUANTILES)
    for g in keys:
        reg, b, hr = g // cells, (g % cells) // 24, g % 24
        a, e = starts[g], ends[g]
        if e - a >= 20 and w_sorted is not None:
            w = w_sorted[a:e]
            cw = (np.cumsum(w) - 0.5 * w) / w.sum()  # weighted plotting positions, ascending
            out[reg, :, b, hr] = np.interp(qs, cw, r_sorted[a:e])
        elif e - a >= 20:
            pos = a + qs * (e - a - 1)
            lo = np.floor(pos).astype(int)
            frac = pos - lo
            hi = np.minimum(lo + 1, e - 1)
            out[reg, :, b, hr] = r_sorted[lo] * (1 - frac) + r_sorted[hi] * frac
        elif reg == 1:
            out[1, :, b, hr] = out[0, :, b, hr]
        else:
            out[0, :, b, hr] = everything
    return out
