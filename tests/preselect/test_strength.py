"""Predictive strength, degenerate families, AUC and example picking, on constructed cases."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from curate.errors import ConfigError
from curate.preselect.family import Member, rank
from curate.preselect.selector import (
    NEGATIVE,
    POSITIVE,
    loss_correlation,
    pick_examples,
    roc_auc,
)
from curate.preselect.strength import (
    bits_per_char,
    check_family_signal,
    distribution,
    max_strength,
    normalized,
    predictive_strength,
)


def _loop_strength(bpc: np.ndarray) -> np.ndarray:
    """The authors' double loop, as an independent oracle."""
    m, n = bpc.shape
    out = np.zeros(n, dtype=np.int64)
    for d in range(n):
        for i in range(m):
            for j in range(i + 1, m):
                out[d] += bpc[i, d] < bpc[j, d]
    return out


def test_perfect_order_scores_n_choose_2_and_reversed_scores_zero():
    for m in (2, 3, 6, 7):
        ordered = np.arange(m, dtype=float)[:, None] + np.array([[0.0, 0.5]])  # two docs, best model lowest
        assert max_strength(m) == m * (m - 1) // 2
        assert predictive_strength(ordered).tolist() == [max_strength(m)] * 2
        assert predictive_strength(ordered[::-1]).tolist() == [0, 0]


def test_ties_count_as_misses():
    bpc = np.array([
        # doc: all equal | models 0 and 1 tie | 1 and 2 tie | NaN loss | one inversion (1 vs 2)
        [2.0, 1.0, 1.0, np.nan, 1.0],
        [2.0, 1.0, 2.0, 2.0, 3.0],
        [2.0, 3.0, 2.0, 3.0, 2.0],
    ])
    # pairs (0,1), (0,2), (1,2): a tie or NaN is never "strictly lower"
    assert predictive_strength(bpc).tolist() == [0, 2, 2, 1, 2]


def test_matches_the_pairwise_loop_on_random_losses_with_ties():
    rng = np.random.default_rng(0)
    bpc = rng.integers(0, 4, size=(6, 500)).astype(float)  # few values: many ties
    got = predictive_strength(bpc)
    assert np.array_equal(got, _loop_strength(bpc))
    assert got.max() <= 15 and normalized(got, 6).max() <= 1.0
    dist = distribution(got, 6)
    assert list(dist) == list(range(16)) and sum(dist.values()) == 500


def test_bits_per_char():
    nll = np.array([math.log(2) * 10 * 2, 5.0, 1.0])
    chars = np.array([10, 0, 4])
    out = bits_per_char(nll, chars)
    assert out[0] == pytest.approx(2.0) and math.isnan(out[1]) and out[2] == pytest.approx(1 / math.log(2) / 4)


def test_family_of_one_runs_checkpoints_is_refused_with_the_distribution():
    rng = np.random.default_rng(1)
    base = rng.uniform(1, 3, size=300)
    # later checkpoints of one run: the same document profile, uniformly a little better
    copies = np.stack([base - 0.01 * (5 - k) for k in range(6)])
    s = predictive_strength(copies)
    assert (s == 15).all()
    with pytest.raises(ConfigError, match=r"100% of sampled documents have a perfect score.*15: 300"):
        check_family_signal(s, 6)


def test_identical_models_are_refused():
    same = np.tile(np.linspace(1, 2, 50), (4, 1))
    s = predictive_strength(same)
    assert (s == 0).all()
    with pytest.raises(ConfigError, match=r"only 0 sampled documents have a perfect score.*0: 50"):
        check_family_signal(s, 4)


def test_a_family_with_signal_passes():
    rng = np.random.default_rng(2)
    quality = np.arange(6)[:, None] * 0.05  # best model first
    bpc = 2 + quality + rng.normal(0, 0.05, size=(6, 400))
    s = predictive_strength(bpc)
    perfect = check_family_signal(s, 6)
    assert perfect == int((s == 15).sum()) and 10 <= perfect < 200


def test_roc_auc_known_cases():
    assert roc_auc([True, True, False, False], [0.9, 0.8, 0.2, 0.1]) == 1.0
    assert roc_auc([True, True, False, False], [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert roc_auc([True, False, True, False], [0.5, 0.5, 0.5, 0.5]) == 0.5
    # pairs (pos, neg): (.8,.6) (.8,.2) (.4,.6) (.4,.2) -> 3 of 4 ordered
    assert roc_auc([True, True, False, False], [0.8, 0.4, 0.6, 0.2]) == 0.75
    # a tie between classes counts one half
    assert roc_auc([True, False, False], [0.5, 0.5, 0.1]) == 0.75
    assert math.isnan(roc_auc([True, True], [0.1, 0.2]))


def test_roc_auc_equals_pair_counting():
    rng = np.random.default_rng(3)
    y = rng.random(300) < 0.3
    s = np.round(rng.random(300), 1)  # ties across classes
    pos, neg = s[y], s[~y]
    pairs = sum((p > q) + 0.5 * (p == q) for p, q in itertools.product(pos, neg)) / (len(pos) * len(neg))
    assert roc_auc(y, s) == pytest.approx(pairs, abs=1e-12)


def test_examples_are_balanced_lowest_and_split_by_class():
    strength = np.array([15, 3, 15, 0, 9, 15, 1, 15, 0, 12, 15, 2, 14, 15, 5, 7])
    ex = pick_examples(strength, 15, valid_fraction=0.34)
    assert len(ex.positives) == len(ex.negatives) == 6
    assert (strength[ex.positives] == 15).all()
    assert sorted(strength[ex.negatives].tolist()) == [0, 0, 1, 2, 3, 5]  # the six lowest
    assert set(ex.train).isdisjoint(ex.valid) and len(ex.train) + len(ex.valid) == 12
    for lab in (POSITIVE, NEGATIVE):
        assert (ex.labels[ex.valid] == lab).sum() == 2 and (ex.labels[ex.train] == lab).sum() == 4
    assert (ex.labels == "").sum() == 4
    # more perfect documents than others: positives are cut to balance
    many = pick_examples(np.array([3] * 8 + [1, 2]), 3, valid_fraction=0.2)
    assert len(many.positives) == len(many.negatives) == 2


def test_positive_share_ranks_by_loss_correlation_and_rest_are_negatives():
    target = np.array([3.0, 3.5, 4.0, 4.5])  # ranked family: the target's losses rise down the ranking
    # docs: 0 in order but one step at the end, 1 in order, 2 swaps the two top members (nearly equal on it),
    # 3 reversed, 4 exactly the target's shape, 5 the same loss under every member
    bpc = np.array([[3.0, 3.0, 3.51, 5.0, 4.0, 4.0],
                    [3.01, 3.6, 3.5, 4.5, 4.5, 4.0],
                    [3.02, 3.9, 4.0, 4.0, 5.0, 4.0],
                    [4.5, 4.6, 4.5, 3.0, 5.5, 4.0]])
    corr = loss_correlation(bpc, target)
    assert corr.round(3).tolist() == [0.781, 0.99, 0.941, -0.983, 1.0, -1.0]  # flat: no correlation, ranked last
    strength = predictive_strength(bpc)
    assert strength.tolist() == [6, 6, 5, 0, 6, 0]
    # doc 2 misses one pair of six but tracks the target closely; doc 0 is in order but barely follows it:
    # the share by correlation keeps doc 2, the paper's perfect documents keep doc 0
    ex = pick_examples(strength, 6, valid_fraction=0.25, positive_share=3 / 6, share_by=corr, negatives="rest")
    assert ex.positives.tolist() == [1, 2, 4]
    assert ex.negatives.tolist() == [0, 3, 5]  # every other document, not as many as the positives
    assert (ex.labels == "").sum() == 0
    for lab in (POSITIVE, NEGATIVE):
        assert (ex.labels[ex.valid] == lab).sum() == 1
    paper = pick_examples(strength, 6, valid_fraction=0.25)
    assert paper.positives.tolist() == [0, 1, 4] and sorted(paper.negatives.tolist()) == [2, 3, 5]
    with pytest.raises(ConfigError, match="negatives"):
        pick_examples(strength, 6, valid_fraction=0.25, negatives="random")
    with pytest.raises(ConfigError, match="positive_share"):
        pick_examples(strength, 6, valid_fraction=0.25, positive_share=1.5, share_by=corr)
    with pytest.raises(ConfigError, match="share_by"):
        pick_examples(strength, 6, valid_fraction=0.25, positive_share=0.5)


def test_ranking_is_measured_not_assumed():
    def member(name, bpc, params):
        return Member(name=name, path=f"/m/{name}", source="checkpoint", params=params, target_bpc=bpc, target_loss=bpc)

    # the biggest model measures worst: it ranks last
    fam, order = rank([member("big", 2.5, 10_000), member("small", 2.1, 100), member("mid", 2.3, 1_000)],
                      target="t", target_texts=["abc"])
    assert fam.names == ["small", "mid", "big"] and order.tolist() == [1, 2, 0]
    assert [m.rank for m in fam.members] == [0, 1, 2]
    by_acc, _ = rank([member("a", 2.1, 1), member("b", 2.2, 1), member("c", 2.3, 1)], target="t",
                     target_texts=["abc"], accuracies={"a": 0.3, "b": 0.5, "c": 0.4})
    assert by_acc.names == ["b", "c", "a"] and "accuracy" in by_acc.ranked_by
    with pytest.raises(ConfigError, match="missing c"):
        rank([member("a", 2.1, 1), member("b", 2.2, 1), member("c", 2.3, 1)], target="t", target_texts=["x"],
             accuracies={"a": 0.3, "b": 0.5})
    with pytest.raises(ConfigError, match="at least 3"):
        rank([member("a", 2.1, 1), member("b", 2.2, 1)], target="t", target_texts=["x"])
