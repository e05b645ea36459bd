"""Rank statistics for influence models, in numpy (no SciPy in the environment).

Spearman's rho is the Pearson correlation of average ranks; the permutation
test asks how often a shuffled prediction ranks the oracle at least as well,
which is the "beats a constant predictor" check without a hard-coded bar.
"""

from __future__ import annotations

import numpy as np


def rankdata(x: np.ndarray) -> np.ndarray:
    """Average ranks (1-based), ties sharing the mean of their positions."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho of two equal-length vectors; NaN when either is constant or shorter than 3."""
    if len(a) != len(b):
        raise ValueError(f"spearman needs equal lengths, got {len(a)} and {len(b)}")
    if len(a) < 3:
        return float("nan")
    ra, rb = rankdata(a), rankdata(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def permutation_pvalue(pred: np.ndarray, truth: np.ndarray, n: int = 2000, seed: int = 0) -> float:
    """One-sided p-value of Spearman(pred, truth) > 0: share of shuffles that do at least as well.

    ``(hits + 1) / (n + 1)``, so it is never 0 and is valid for a finite number of shuffles.
    """
    obs = spearman(pred, truth)
    if not np.isfinite(obs):
        return 1.0
    rng = np.random.default_rng(seed)
    rp = rankdata(pred)
    rt = rankdata(truth)
    rp, rt = rp - rp.mean(), rt - rt.mean()
    denom = float(np.sqrt((rp * rp).sum() * (rt * rt).sum()))
    perms = np.stack([rng.permutation(rp) for _ in range(n)])
    rhos = perms @ rt / denom
    return float((np.sum(rhos >= obs - 1e-12) + 1) / (n + 1))


def zscore(x: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(z-scores, mean, std) with std floored so a constant vector maps to zeros."""
    x = np.asarray(x, dtype=np.float64)
    mean, std = float(x.mean()), float(x.std())
    std = std if std > 1e-12 else 1.0
    return (x - mean) / std, mean, std
