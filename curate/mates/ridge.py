"""Ridge regression on frozen embeddings, with an honest held-out estimate (numpy + one torch SVD).

The penalty is chosen by leave-one-out Spearman in closed form (residual
e_i / (1 - h_ii) from one SVD per design); the held-out number comes from
K-fold predictions with the penalty chosen inside each fold, so no probe is
scored by a model that saw it, penalty choice included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from curate.errors import ConfigError
from curate.mates.stats import spearman

#: ridge penalties, as multiples of the mean squared singular value of the standardized embeddings
RIDGE_GRID = tuple(float(a) for a in np.logspace(-3, 3, 13))


@dataclass
class _Design:
    """SVD of a centred design, computed once per fit and shared by penalty choice and weights."""

    u: np.ndarray
    s: np.ndarray
    vt: np.ndarray
    x_mean: np.ndarray
    y: np.ndarray
    y_mean: float


def _design(x: np.ndarray, y: np.ndarray) -> _Design:
    import torch

    # torch's SVD honours the worker's thread count; numpy's multi-threaded BLAS was 20x slower
    # on these small matrices on a busy 2-core machine
    u, s, vt = torch.linalg.svd(torch.from_numpy(x - x.mean(0)), full_matrices=False)
    return _Design(u.numpy(), s.numpy(), vt.numpy(), x.mean(0), y, float(y.mean()))


def _loo_spearman(d: _Design, grid: tuple[float, ...]) -> tuple[float, list[dict[str, float]]]:
    """The penalty with the best leave-one-out Spearman (closed form: e_i / (1 - h_ii)), and the curve."""
    scale = float(np.mean(d.s**2)) or 1.0
    uty = d.u.T @ (d.y - d.y_mean)
    curve = []
    for r in grid:
        shrink = d.s**2 / (d.s**2 + r * scale)
        fitted = d.u @ (shrink * uty) + d.y_mean
        h = (d.u**2) @ shrink + 1.0 / len(d.y)
        loo = d.y - (d.y - fitted) / np.maximum(1 - h, 1e-9)
        curve.append({"alpha": r, "loo_spearman": spearman(loo, d.y)})
    finite = [c for c in curve if np.isfinite(c["loo_spearman"])]
    # ties go to the larger penalty: the simpler model
    best = max(finite, key=lambda c: (round(c["loo_spearman"], 12), c["alpha"])) if finite else curve[-1]
    return best["alpha"] * scale, curve


def _ridge_fit(d: _Design, alpha: float) -> tuple[np.ndarray, float]:
    """(w, b) of ridge regression with intercept."""
    w = d.vt.T @ ((d.s / (d.s**2 + alpha)) * (d.u.T @ (d.y - d.y_mean)))
    return w, d.y_mean - float(d.x_mean @ w)


def _standardize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(0)
    std = x.std(0)
    return mean, np.where(std > 1e-8, std, 1.0)


def fit_ridge(x: np.ndarray, y: np.ndarray, *, folds: int = 5, seed: int = 0,
              grid: tuple[float, ...] = RIDGE_GRID) -> dict[str, Any]:
    """Ridge on embeddings ``x`` (n, d) for targets ``y``: final weights, out-of-fold predictions, choices.

    Returns ``w``, ``b``, ``x_mean``, ``x_std`` (for raw embeddings), ``oof`` (each probe predicted by
    a model fit without its fold), ``alpha`` and the leave-one-out curve of the final fit.
    """
    n = len(y)
    if n < 2 * folds:
        raise ConfigError(f"{n} probes are too few for {folds}-fold held-out evaluation: probe at least {2 * folds}")
    mean, std = _standardize(x)
    z = (x - mean) / std
    fold = np.random.default_rng(seed).permutation(n) % folds
    oof = np.empty(n)
    for k in range(folds):
        tr, te = fold != k, fold == k
        m, s = _standardize(x[tr])
        ztr, zte = (x[tr] - m) / s, (x[te] - m) / s
        d = _design(ztr, y[tr])
        w, b = _ridge_fit(d, _loo_spearman(d, grid)[0])
        oof[te] = zte @ w + b
    d = _design(z, y)
    alpha, curve = _loo_spearman(d, grid)
    w, b = _ridge_fit(d, alpha)
    return {"w": w, "b": b, "x_mean": mean, "x_std": std, "oof": oof, "alpha": alpha, "curve": curve,
            "train_pred": z @ w + b}
