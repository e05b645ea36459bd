"""Exact Gumbel-top-k selection: sample k documents without replacement from softmax(-prediction / tau).

Adding independent Gumbel(0, 1) noise to the logits ``-prediction / tau`` and
keeping the k largest draws exactly k documents without replacement with
probabilities proportional to ``exp(-prediction / tau)`` (the Gumbel-top-k
trick). Lower predicted reference loss is better, hence the minus sign. The
MATES repository adds noise differently, which is not exact sampling.
"""

from __future__ import annotations

import numpy as np

from curate.errors import ConfigError


def keep_count(n: int, keep: float) -> int:
    """How many of ``n`` candidates a keep fraction selects (rounded, at least 1 when n > 0)."""
    if not 0 < keep <= 1:
        raise ConfigError(f"keep must be in (0, 1], got {keep}")
    return min(n, max(1 if n else 0, int(round(keep * n))))


def gumbel_keys(pred: np.ndarray, tau: float, seed: int | list[int]) -> np.ndarray:
    """``-pred / tau + Gumbel(0, 1)`` noise, seeded; the keys selection ranks by (highest first)."""
    if tau <= 0:
        raise ConfigError(f"tau must be positive, got {tau}")
    pred = np.asarray(pred, dtype=np.float64)
    if not np.isfinite(pred).all():
        raise ConfigError("Gumbel-top-k needs a finite prediction for every candidate")
    rng = np.random.default_rng(seed)
    return -pred / tau + rng.gumbel(size=len(pred))


def gumbel_top_k(pred: np.ndarray, k: int, *, tau: float = 0.5, seed: int | list[int] = 0) -> tuple[np.ndarray, np.ndarray]:
    """(indices of the k kept candidates, best key first; every candidate's key).

    Callers pass candidates in a canonical order (e.g. sorted by doc_id) so the same seed
    selects the same documents whatever order a query returned them in.
    """
    keys = gumbel_keys(pred, tau, seed)
    if not 0 <= k <= len(keys):
        raise ConfigError(f"cannot keep {k} of {len(keys)} candidates")
    # ties between float keys are measure-zero; the stable sort still makes them reproducible
    order = np.argsort(-keys, kind="stable")
    return order[:k], keys
