"""Predictive strength: how often a document's losses rank the reference family in its measured order.

For a family ranked best-first (by measured quality on a target set), a document's
strength is the number of model pairs (i better than j) where model i's bits per
character on it are *strictly* lower than model j's; a tie counts as a miss. With
six models that is 0..15 (PreSelect's score; not Kendall tau). Documents with a
perfect score are the ones "whose losses predict ability".

Losses are divided by characters, not tokens, so models with different tokenizers
stay comparable (the authors' code divides summed loss by ``len(text)``).
"""

from __future__ import annotations

import math

import numpy as np

from curate.errors import ConfigError

#: share of perfect documents above which the family is refused (labels would carry no signal)
MAX_PERFECT_SHARE = 0.5
#: fewest perfect documents a selector can be trained from
MIN_POSITIVES = 10


def max_strength(n_models: int) -> int:
    """The perfect score: every one of the n(n-1)/2 pairs in order."""
    return n_models * (n_models - 1) // 2


def bits_per_char(nll_sum: np.ndarray, n_chars: np.ndarray) -> np.ndarray:
    """Summed NLL (nats) / ln 2 / characters; NaN where a document has no characters."""
    nll_sum = np.asarray(nll_sum, dtype=np.float64)
    n_chars = np.asarray(n_chars, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n_chars > 0, nll_sum / math.log(2) / n_chars, np.nan)


def predictive_strength(bpc: np.ndarray) -> np.ndarray:
    """Per document, the number of pairs (i < j) with ``bpc[i] < bpc[j]``.

    ``bpc`` is (n_models, n_docs) with rows ordered best model first. Equal losses
    (and NaN) compare False, so a tie is a miss. Returns int64 (n_docs,).
    """
    bpc = np.asarray(bpc, dtype=np.float64)
    if bpc.ndim != 2 or bpc.shape[0] < 2:
        raise ConfigError(f"predictive strength needs a (models, docs) array of at least 2 models, got {bpc.shape}")
    i, j = np.triu_indices(bpc.shape[0], k=1)
    # (pairs, docs) booleans: for six models and a few thousand documents this is tiny
    return (bpc[i] < bpc[j]).sum(axis=0).astype(np.int64)


def normalized(strength: np.ndarray, n_models: int) -> np.ndarray:
    """Strength as a share of the perfect score, 0..1."""
    return np.asarray(strength, dtype=np.float64) / max_strength(n_models)


def distribution(strength: np.ndarray, n_models: int) -> dict[int, int]:
    """Documents per strength value, every value 0..max included."""
    counts = np.bincount(np.asarray(strength, dtype=np.int64), minlength=max_strength(n_models) + 1)
    return {k: int(c) for k, c in enumerate(counts)}


def summary(strength: np.ndarray, n_models: int) -> dict[str, object]:
    """What a card records: the perfect score, the distribution, perfect count and share, mean normalized."""
    top = max_strength(n_models)
    perfect = int((np.asarray(strength) == top).sum())
    return {"max": top, "distribution": distribution(strength, n_models), "perfect": perfect,
            "perfect_share": round(perfect / max(len(strength), 1), 4),
            "mean_normalized": round(float(normalized(strength, n_models).mean()), 4)}


def describe(strength: np.ndarray, n_models: int) -> str:
    """One line a person can read: how many docs got each score."""
    dist = distribution(strength, n_models)
    return ", ".join(f"{k}: {c}" for k, c in dist.items() if c)


def check_family_signal(strength: np.ndarray, n_models: int, *, max_perfect_share: float = MAX_PERFECT_SHARE,
                        min_positives: int = MIN_POSITIVES) -> int:
    """Refuse a family whose strengths are degenerate; returns the number of perfect documents.

    Checkpoints of one run (or near-copies) rank nearly every document the same way, so
    nearly every score is perfect and the labels carry no signal; identical models tie
    everywhere, so nearly none is.
    """
    n = len(strength)
    top = max_strength(n_models)
    perfect = int((np.asarray(strength) == top).sum())
    if n == 0:
        raise ConfigError("predictive strength: the document sample is empty; check the pool SQL")
    share = perfect / n
    hint = (f"strength distribution over {n} sampled documents (score: docs, perfect = {top}): "
            f"{describe(strength, n_models)}")
    if share > max_perfect_share:
        raise ConfigError(
            f"the reference family is degenerate: {share:.0%} of sampled documents have a perfect score "
            f"(over max_perfect_share={max_perfect_share:g}), so the models rank almost every document the same way "
            f"(checkpoints of one run?) and positives carry no signal. Use independently trained models with "
            f"different sizes, seeds and data slices. {hint}"
        )
    if perfect < min_positives:
        raise ConfigError(
            f"the reference family is degenerate: only {perfect} sampled documents have a perfect score "
            f"(min_positives={min_positives}); the models' losses almost never follow their measured ranking "
            f"(near-identical models tie everywhere). Widen the quality spread of the family or sample more "
            f"documents (sample_docs). {hint}"
        )
    return perfect

