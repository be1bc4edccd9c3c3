"""Quantiles are ordered everywhere, widen with spikes in the history, and P90 sits where spikes happen."""

from __future__ import annotations

import numpy as np
import pandas as pd

from powersync_pipelines.forecasts.price_model import FittedPriceModel, fit_price_model

from ._prices import TZ, rrp_series


def test_p10_p50_p90_are_ordered_at_every_horizon_and_issue_time():
    s = rrp_series(days=20, seed=3)
    model = fit_price_model(s, pd.Timestamp("2024-05-18T14:00:00Z"), TZ)
    for now in pd.date_range("2024-05-18T14:00:00Z", periods=12, freq="95min"):
        p = model.forecast(now, s[s.index <= now])
        assert len(p.mean) == 576
        assert np.all(p.p10 <= p.p50) and np.all(p.p50 <= p.p90)
        assert p.mean[0] == p.p10[0] == p.p90[0] == s[now]  # the current interval is known


def test_spiky_history_puts_a_high_p90_on_the_evening_and_not_at_noon():
    spiky = rrp_series(days=30, seed=5, spike_rate=0.08)
    calm = rrp_series(days=30, seed=5, spikes=False)
    as_of = pd.Timestamp("2024-05-30T14:00:00Z")
    now = pd.Timestamp("2024-05-30T14:00:00Z")  # local midnight: 17:30-19:00 is 17.5-19 h ahead
    ps = fit_price_model(spiky, as_of, TZ).forecast(now, spiky[spiky.index <= now])
    pc = fit_price_model(calm, as_of, TZ).forecast(now, calm[calm.index <= now])
    evening = slice(17 * 12 + 6, 19 * 12)
    noon = slice(12 * 12, 13 * 12)
    assert ps.p90[evening].max() > pc.p90[evening].max() + 100
    assert ps.p90[noon].max() < ps.p90[evening].max()


def test_a_spike_in_progress_raises_the_next_hour():
    s = rrp_series(days=30, seed=5)
    model = fit_price_model(s, pd.Timestamp("2024-05-30T14:00:00Z"), TZ)
    now = pd.Timestamp("2024-05-31T07:40:00Z")  # 17:40 local
    recent = s[s.index <= now].copy()
    calm = model.forecast(now, recent)
    recent.iloc[-3:] = 2500.0  # a spike has been running for 15 minutes
    hot = model.forecast(now, recent)
    assert hot.mean[1:7].mean() > calm.mean[1:7].mean() + 200
    # ...and the effect fades: two days out the two forecasts nearly agree.
    assert abs(hot.mean[-12:].mean() - calm.mean[-12:].mean()) < 0.25 * abs(hot.mean[1] - calm.mean[1])


def test_a_model_survives_its_registry_round_trip():
    s = rrp_series(days=10)
    m = fit_price_model(s, pd.Timestamp("2024-05-10T14:00:00Z"), TZ)
    back = FittedPriceModel.from_dict(m.to_dict())
    now = pd.Timestamp("2024-05-10T20:00:00Z")
    a, b = m.forecast(now, s[s.index <= now]), back.forecast(now, s[s.index <= now])
    np.testing.assert_allclose(a.mean, b.mean, atol=1e-3)
    assert back.version == m.version and back.train_end == m.train_end
