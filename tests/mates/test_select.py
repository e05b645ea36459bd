"""Gumbel-top-k keeps exactly k, is reproducible, and samples exactly; rank statistics match their definitions."""

from __future__ import annotations

import numpy as np
import pytest

from curate.errors import ConfigError
from curate.mates.select import gumbel_top_k, keep_count
from curate.mates.stats import permutation_pvalue, rankdata, spearman


def test_keeps_exactly_k_distinct_and_reproducible():
    pred = np.random.default_rng(3).normal(size=500)
    k = keep_count(len(pred), 0.2)
    assert k == 100
    a, keys = gumbel_top_k(pred, k, tau=0.5, seed=[7, 1])
    b, _ = gumbel_top_k(pred, k, tau=0.5, seed=[7, 1])
    c, _ = gumbel_top_k(pred, k, tau=0.5, seed=[8, 1])
    assert len(a) == k == len(set(a.tolist()))
    assert np.array_equal(a, b)
    assert set(a.tolist()) != set(c.tolist())
    assert np.all(np.diff(keys[a]) <= 0)  # best key first
    assert keys[a].min() >= np.delete(keys, a).max()  # the k largest keys, none skipped


def test_lower_predicted_loss_is_preferred_and_low_tau_is_top_k():
    pred = np.arange(200, dtype=float)
    idx, _ = gumbel_top_k(pred, 40, tau=1e-3, seed=0)
    assert sorted(idx.tolist()) == list(range(40))
    idx, _ = gumbel_top_k(pred, 40, tau=50.0, seed=0)
    assert pred[idx].mean() < pred.mean()


def test_single_draw_follows_softmax_of_minus_prediction_over_tau():
    # exact sampling: P(i kept first) = softmax(-pred / tau)_i
    pred, tau, n = np.array([0.0, 0.5, 1.5]), 0.5, 6000
    p = np.exp(-pred / tau)
    p /= p.sum()
    counts = np.bincount([gumbel_top_k(pred, 1, tau=tau, seed=s)[0][0] for s in range(n)], minlength=3)
    sd = np.sqrt(n * p * (1 - p))
    assert np.all(np.abs(counts - n * p) < 5 * sd), (counts, n * p)


def test_keep_count_and_refusals():
    assert keep_count(387, 0.2) == 77 and keep_count(3, 0.01) == 1 and keep_count(0, 0.2) == 0
    for bad in (0.0, 1.5):
        with pytest.raises(ConfigError, match="keep"):
            keep_count(10, bad)
    with pytest.raises(ConfigError, match="tau"):
        gumbel_top_k(np.zeros(3), 1, tau=0.0)
    with pytest.raises(ConfigError, match="finite"):
        gumbel_top_k(np.array([0.0, np.nan]), 1)


def test_rank_statistics():
    assert rankdata(np.array([3.0, 1.0, 2.0, 2.0])).tolist() == [4.0, 1.0, 2.5, 2.5]
    a, b = np.array([1.0, 2.0, 2.0, 3.0, 5.0]), np.array([1.0, 3.0, 2.0, 4.0, 4.0])
    ra, rb = rankdata(a), rankdata(b)
    assert spearman(a, b) == pytest.approx(np.corrcoef(ra, rb)[0, 1])
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert np.isnan(spearman(np.ones(5), a))
    rng = np.random.default_rng(0)
    x = rng.normal(size=80)
    assert permutation_pvalue(x + 0.3 * rng.normal(size=80), x) < 0.01
    assert permutation_pvalue(rng.normal(size=80), x, seed=1) > 0.01
