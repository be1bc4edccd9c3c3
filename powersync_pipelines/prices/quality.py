"""Data-quality checks shared by every provider: the things that silently wreck a battery plan.

Each check either fixes what is safe to fix (a short gap, flagged in ``filled``; an interval repeated with
the same prices) or raises a ``PriceDataError`` naming the provider and the problem (one interval at two
prices, NaN/inf, wrong units, too many gaps, a clock shifted by an hour). Every parser ends in
``clean_intervals`` + ``price_frame``; whoever serves a frame (the CLI, ``fetch_with_fallback``) runs
``apply_gap_policy`` (SPEC §3: short gaps filled and flagged, long ones reported, too many refused).
Nothing here talks to the network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..schemas import FrameSchemaError, finalize_price_frame
from .errors import PriceDataError

PRICE_COLS = ("import_price", "export_price")
# How many consecutive missing intervals may be forward-filled: 30 minutes on a 5-min grid, one
# slot on a 30-min grid. Longer holes stay holes and count as missing.
DEFAULT_MAX_FILL = pd.Timedelta(minutes=30)
TARIFF_SYNC_MAX_MISSING = 0.10


def _when(ts: object) -> str:
    return ts.isoformat() if isinstance(ts, pd.Timestamp) else str(ts)


def shown(value: object) -> str:
    """A payload value as the person who wrote it would recognise it (``inf``, ``missing``, ``'abc'``)."""
    if value is None or (isinstance(value, float | np.floating) and np.isnan(value)):
        return "missing"
    if isinstance(value, np.generic):
        value = value.item()
    return f"{value:g}" if isinstance(value, float) else repr(value)


def check_finite(df: pd.DataFrame, provider: str, columns: tuple[str, ...] = PRICE_COLS, where: str = "") -> None:
    """Every price a finite number: a NaN, null or inf is never dropped or carried silently."""
    for col in columns:
        if col not in df:
            continue
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raw = df[col].iloc[pos]
            raise PriceDataError(provider, "nan_prices",
                                 f"{where}{col} has {int(bad.sum())} missing or non-finite value(s), first at "
                                 f"{_when(df.index[pos])} (got {shown(raw)})")


def drop_repeats(df: pd.DataFrame, provider: str, columns: tuple[str, ...] = PRICE_COLS,
                 where: str = "") -> pd.DataFrame:
    """One row per interval: exact repeats collapse; one interval at two different prices is refused.

    Keeping "the last" of two different prices silently moves the plan and its baseline; which one is right
    cannot be known from the payload, so the provider's data is refused with both values named.
    """
    dup = df.index.duplicated(keep=False)
    if not dup.any():
        return df
    cols = [c for c in columns if c in df]
    rows = df.loc[dup, cols]
    distinct = rows.groupby(level=0, sort=False).nunique(dropna=False)
    clash = distinct.index[(distinct > 1).any(axis=1)] if cols else distinct.index[:0]
    if len(clash):
        first = clash[0]
        col = next(c for c in cols if distinct.loc[first, c] > 1)
        values = ", ".join(shown(v) for v in df.loc[[first], col].tolist())
        raise PriceDataError(provider, "conflicting_duplicates",
                             f"{where}{len(clash)} interval(s) appear more than once with different prices, "
                             f"first {_when(first)}: {col} {values}")
    return df[~df.index.duplicated(keep="first")]


def check_complete_text(text: str, name: str, provider: str) -> None:
    """A saved CSV must end with a line break: a file cut inside its last price ("9.933" -> "9.9") is otherwise
    a valid-looking row with a wrong price. Every file the providers and our own writers produce ends with one."""
    if text and not text.endswith(("\n", "\r")):
        last = text.rsplit("\n", 1)[-1]
        raise PriceDataError(provider, "truncated_file",
                             f"{name}: the last line ({last[:40]!r}) has no line break; the file looks cut off "
                             "(a complete file ends with one)")


def clean_intervals(df: pd.DataFrame, provider: str, columns: tuple[str, ...] = PRICE_COLS,
                    where: str = "") -> pd.DataFrame:
    """What every parser runs on its rows: UTC-aware index, finite prices, each interval once, in order."""
    idx = df.index
    if not isinstance(idx, pd.DatetimeIndex) or idx.tz is None:
        raise PriceDataError(provider, "naive_timestamps", f"{where}interval times must carry a UTC offset")
    check_finite(df, provider, columns, where)
    return drop_repeats(df, provider, columns, where).sort_index()


def price_frame(df: pd.DataFrame, provider: str, source: str, fetched_at: pd.Timestamp | None = None,
                columns: tuple[str, ...] = PRICE_COLS) -> pd.DataFrame:
    """``clean_intervals`` then the pandera-validated frame; a schema failure is a one-line ``PriceDataError``."""
    df = clean_intervals(df, provider, columns)
    try:
        return finalize_price_frame(df, source=source, fetched_at=fetched_at)
    except FrameSchemaError as exc:
        raise PriceDataError(provider, "schema_violation", str(exc)) from None


def check_index(df: pd.DataFrame, provider: str) -> None:
    """Duplicated or out-of-order interval starts mean the provider (or our parse) is confused: refuse."""
    idx = df.index
    if not isinstance(idx, pd.DatetimeIndex) or idx.tz is None:
        raise PriceDataError(provider, "naive_timestamps", "interval_start must be timezone-aware UTC")
    dup = idx.duplicated()
    if dup.any():
        first = idx[dup][0]
        raise PriceDataError(provider, "duplicated_intervals",
                             f"{int(dup.sum())} duplicated interval(s), first at {first.isoformat()}")
    if not idx.is_monotonic_increasing:
        pos = int(np.argmax(np.diff(idx.asi8) < 0)) + 1
        raise PriceDataError(provider, "out_of_order_intervals",
                             f"interval {idx[pos].isoformat()} comes after {idx[pos - 1].isoformat()}")


def native_step(idx: pd.DatetimeIndex) -> pd.Timedelta:
    """The grid step: the most common spacing (5 or 30 minutes for every provider we know)."""
    if len(idx) < 2:
        return pd.Timedelta(minutes=5)
    diffs = pd.Series(np.diff(idx.asi8))
    return pd.Timedelta(int(diffs.mode().iloc[0]), unit="ns")


def guess_price_unit(values: pd.Series | np.ndarray) -> str:
    """A magnitude heuristic: '$/kWh' (median |x| < 2), 'c/kWh' (< 150) or '$/MWh'.

    c/kWh and $/MWh overlap (a 60 could be either), so this is used only to *explain* a value that failed
    the expected unit's band, never to convert silently.
    """
    v = np.abs(np.asarray(values, dtype=float))
    v = v[np.isfinite(v)]
    if v.size == 0:
        return "unknown"
    med = float(np.median(v))
    if med < 2:
        return "$/kWh"
    return "c/kWh" if med < 150 else "$/MWh"


def check_price_unit(values: pd.Series | np.ndarray, expected: str, provider: str, what: str = "prices") -> None:
    """Refuse values whose magnitude cannot be in ``expected`` ('$/kWh', 'c/kWh' or '$/MWh').

    Bands: $/kWh retail prices have a median well under 2; c/kWh and $/MWh prices have medians over 1
    except in a few freak hours, so a whole payload of sub-1 values in those units is a unit mix-up.
    """
    v = np.abs(np.asarray(values, dtype=float))
    v = v[np.isfinite(v)]
    if v.size < 6:  # too few to judge; the pandera band still catches gross errors
        return
    med = float(np.median(v))
    p90 = float(np.quantile(v, 0.9))
    if expected in ("$/kWh", "£/kWh") and med > 2:
        raise PriceDataError(provider, "wrong_units",
                             f"{what} look like {guess_price_unit(v)} (median {med:.4g}); expected {expected}")
    if expected in ("c/kWh", "p/kWh", "$/MWh") and p90 < 1:
        raise PriceDataError(provider, "wrong_units",
                             f"{what} look like $/kWh (90th percentile {p90:.4g}); expected {expected}")


@dataclass(frozen=True)
class GapReport:
    """How complete a window is. ``missing_fraction`` counts intervals that are absent (or NaN)."""

    expected: int
    present: int
    filled: int

    @property
    def missing_fraction(self) -> float:
        return 1.0 - self.present / self.expected if self.expected else 1.0

    @property
    def filled_fraction(self) -> float:
        return self.filled / self.expected if self.expected else 0.0

    def tariff_sync_allowed(self, limit: float = TARIFF_SYNC_MAX_MISSING) -> bool:
        """SPEC §3: more than 10% missing in the first 24 h stops the tariff sync (keep the last good one)."""
        return self.missing_fraction <= limit


def fill_short_gaps(df: pd.DataFrame, provider: str, max_gap: pd.Timedelta = DEFAULT_MAX_FILL,
                    step: pd.Timedelta | None = None) -> pd.DataFrame:
    """Put the frame on its full grid and forward-fill holes up to ``max_gap`` long; flag them ``filled``.

    Longer holes are left out (rows absent) so ``gap_report`` counts them as missing rather than
    pretending a stale price held for hours. Rows with NaN prices count as holes too.
    """
    check_index(df, provider)
    out = df.copy()
    if "filled" not in out:
        out["filled"] = False
    if out.empty:
        return out
    step = step or native_step(out.index)
    nan_rows = out[[c for c in PRICE_COLS if c in out]].isna().any(axis=1)
    out = out[~nan_rows]
    if out.empty:
        raise PriceDataError(provider, "nan_prices", "every interval is missing its price")
    grid = pd.date_range(out.index[0], out.index[-1], freq=step, tz="UTC", name=out.index.name)
    off_grid = out.index.difference(grid)
    if len(off_grid):
        raise PriceDataError(provider, "off_grid_intervals",
                             f"{len(off_grid)} interval(s) not on the {step} grid, e.g. {off_grid[0].isoformat()}")
    present = np.asarray(grid.isin(out.index))
    # each grid slot takes the row of the last present interval (itself when present): dtypes survive
    full = out.iloc[np.cumsum(present) - 1].copy()
    full.index = grid
    hole = pd.Series(~present, index=grid)
    run_len = hole.groupby((~hole).cumsum()).transform("sum")
    fillable = hole & (run_len * step <= max_gap)
    full["filled"] = fillable.to_numpy()
    full = full[present | fillable.to_numpy()]
    return full


@dataclass(frozen=True)
class Gap:
    start: pd.Timestamp  # first missing interval
    intervals: int
    step: pd.Timedelta

    @property
    def end(self) -> pd.Timestamp:
        return self.start + self.intervals * self.step

    def describe(self) -> str:
        hours = self.intervals * self.step / pd.Timedelta(hours=1)
        return f"no prices for {hours:g} h ({self.intervals} intervals) from {_when(self.start)} to {_when(self.end)}"


def find_gaps(idx: pd.DatetimeIndex, step: pd.Timedelta | None = None) -> list[Gap]:
    """Holes between the first and last interval (a horizon that simply ends is not a gap)."""
    if len(idx) < 2:
        return []
    step = step or native_step(idx)
    jumps = np.diff(idx.asi8) // step.value
    at = np.flatnonzero(jumps > 1)
    return [Gap(idx[i] + step, int(jumps[i] - 1), step) for i in at]


def apply_gap_policy(df: pd.DataFrame, provider: str, max_fill: pd.Timedelta = DEFAULT_MAX_FILL,
                     max_missing: float = TARIFF_SYNC_MAX_MISSING) -> pd.DataFrame:
    """SPEC §3 for a frame about to be served: fill holes up to ``max_fill`` (flagged ``filled``), report every
    longer hole in ``attrs["warnings"]``, and refuse the frame when more than ``max_missing`` of its span has
    no price (the caller keeps its last good data)."""
    if df.empty:
        return df
    step = native_step(df.index)
    gaps = find_gaps(df.index, step)
    out = fill_short_gaps(df, provider, max_fill, step) if gaps else df
    if "filled" not in out:
        out = out.assign(filled=False)
    out.attrs = dict(df.attrs)
    long_gaps = [g for g in gaps if g.intervals * step > max_fill]
    span = int((df.index[-1] - df.index[0]) / step) + 1
    missing = sum(g.intervals for g in long_gaps)
    warnings = list(out.attrs.get("warnings", []))
    filled = int(out["filled"].sum())
    if filled:
        warnings.append(f"{provider}: {filled} interval(s) in short gaps forward-filled (flagged 'filled')")
    if missing / span > max_missing:
        worst = max(long_gaps, key=lambda g: g.intervals)
        raise PriceDataError(provider, "too_many_gaps",
                             f"{missing / span:.0%} of the intervals from {_when(df.index[0])} to "
                             f"{_when(df.index[-1])} have no price (limit {max_missing:.0%}); largest: "
                             f"{worst.describe()}")
    warnings += [f"{provider}: {g.describe()}" for g in long_gaps]
    out.attrs["warnings"] = warnings
    return out


def gap_report(df: pd.DataFrame, start: pd.Timestamp, hours: float = 24.0,
               step: pd.Timedelta | None = None) -> GapReport:
    """Completeness of ``[start, start + hours)``: the fraction missing decides whether tariff sync may run."""
    step = step or (native_step(df.index) if len(df) > 1 else pd.Timedelta(minutes=5))
    start = pd.Timestamp(start).tz_convert("UTC").floor(step)
    end = start + pd.Timedelta(hours=hours)
    expected = int((end - start) / step)
    window = df.loc[(df.index >= start) & (df.index < end)]
    ok = window[[c for c in PRICE_COLS if c in window]].notna().all(axis=1)
    filled = int(window.loc[ok, "filled"].sum()) if "filled" in window else 0
    return GapReport(expected=expected, present=int(ok.sum()), filled=filled)


def missing_fraction_first_24h(df: pd.DataFrame, now: pd.Timestamp) -> float:
    """The number tariff sync looks at: fraction of the next 24 h with no usable price."""
    return gap_report(df, now, 24.0).missing_fraction


def detect_hour_shift(new: pd.DataFrame, reference: pd.DataFrame, column: str = "import_price",
                      min_overlap: int = 12) -> int:
    """Hours (-1, 0 or +1) by which ``new`` is shifted against ``reference`` on their *actual* intervals.

    A provider (or a parser) that gets a timezone wrong by an hour produces the same prices one hour
    early or late. When actual prices only agree after shifting by exactly one hour, that is the bug.
    Returns 0 when there is too little overlap to judge or when no shift explains the data better.
    """
    if new.empty or reference.empty:
        return 0

    def actual(df: pd.DataFrame) -> pd.Series:
        keep = ~df["is_forecast"].astype(bool) if "is_forecast" in df else slice(None)
        return df.loc[keep, column].dropna()

    a, b = actual(new), actual(reference)
    scores: dict[int, float] = {}
    for h in (0, -1, 1):
        shifted = a.copy()
        shifted.index = shifted.index + pd.Timedelta(hours=h)
        both = pd.concat([shifted, b], axis=1, join="inner").dropna()
        if len(both) < min_overlap:
            continue
        scores[h] = float(np.mean(np.isclose(both.iloc[:, 0], both.iloc[:, 1], rtol=1e-6, atol=1e-9)))
    if 0 not in scores:
        return 0
    best = max(scores, key=lambda h: scores[h])
    if best != 0 and scores[best] >= 0.9 and scores[0] < 0.5:
        return best
    return 0


def check_hour_shift(new: pd.DataFrame, reference: pd.DataFrame, provider: str) -> None:
    shift = detect_hour_shift(new, reference)
    if shift:
        raise PriceDataError(provider, "timezone_off_by_an_hour",
                             f"actual prices match the stored ones only when shifted by {shift:+d} h")
