"""The PreSelect selector: a fastText classifier of perfect-strength documents against the lowest.

Positives are the sampled documents with a perfect predictive strength; negatives an
equal number of the lowest-scoring ones (the authors' recipe). fastText is trained with
the authors' settings (lr 0.1, dim 100, wordNgrams 2, epoch 3) on lines prepared like
every curate fastText model (newlines to spaces, case kept), so scoring prepares text
the same way. A stratified validation split measures AUC and accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from curate.errors import ConfigError

POSITIVE, NEGATIVE = "1", "0"  # the published PreSelect classifier's labels too
#: the PreSelect repo's fastText settings; bucket is ours (fastText's 2M default makes an 800 MB model)
FASTTEXT_PARAMS: dict[str, Any] = {"lr": 0.1, "dim": 100, "wordNgrams": 2, "epoch": 3, "bucket": 200_000}


@dataclass
class Examples:
    """Indices into the sample: which documents are labelled, how, and on which side of the split."""

    positives: np.ndarray
    negatives: np.ndarray
    train: np.ndarray  # sample indices
    valid: np.ndarray
    labels: np.ndarray  # per sample document: "1", "0" or "" (unlabelled)
    split: np.ndarray  # per sample document: "train", "valid" or ""

    def balance(self) -> dict[str, dict[str, int]]:
        """Documents per split and label: {"train": {"1": n, "0": n}, "valid": {...}}."""
        return {s: {lab: int(((self.split == s) & (self.labels == lab)).sum()) for lab in (POSITIVE, NEGATIVE)}
                for s in ("train", "valid")}


def pick_examples(strength: np.ndarray, perfect: int, valid_fraction: float) -> Examples:
    """Balanced positives/negatives and a stratified split, deterministic in sample order.

    Positives have a strength of at least ``perfect`` (the paper: the maximum; a lower bar
    lets one of the pairs disagree). The sample arrives in a seeded hash order, so "the first
    k" is a reproducible random choice. When positives outnumber the rest, they are cut to balance.
    """
    if not 0 < valid_fraction < 0.5:
        raise ConfigError(f"valid_fraction must be in (0, 0.5), got {valid_fraction}")
    strength = np.asarray(strength)
    pos = np.flatnonzero(strength >= perfect)
    rest = np.flatnonzero(strength < perfect)
    k = min(len(pos), len(rest))
    pos = pos[:k]
    neg = rest[np.argsort(strength[rest], kind="stable")][:k]  # the k lowest, ties in sample order
    n_valid = max(1, round(k * valid_fraction)) if k >= 2 else 0
    valid = np.concatenate([pos[k - n_valid:], neg[k - n_valid:]])
    train = np.concatenate([pos[:k - n_valid], neg[:k - n_valid]])
    labels = np.full(len(strength), "", dtype=object)
    labels[pos], labels[neg] = POSITIVE, NEGATIVE
    split = np.full(len(strength), "", dtype=object)
    split[train], split[valid] = "train", "valid"
    return Examples(positives=pos, negatives=neg, train=train, valid=valid, labels=labels, split=split)


def roc_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve by the rank (Mann-Whitney) formula; tied scores share their mean rank.

    ``positive`` is boolean per example. NaN when one class is missing.
    """
    y = np.asarray(positive, dtype=bool)
    s = np.asarray(score, dtype=np.float64)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    mean_rank = np.cumsum(counts) - (counts - 1) / 2  # 1-based mean rank of each distinct score
    ranks = mean_rank[inverse]
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass
class SelectorFit:
    """A trained selector file and how it did on the validation split."""

    model_file: Path
    train_docs: int
    valid_docs: int
    valid_auc: float
    valid_accuracy: float
    params: dict[str, Any]


def fit_selector(texts: list[str], ex: Examples, out_file: Path, *, params: dict[str, Any] | None = None,
                 threads: int | None = None, seed: int = 0) -> SelectorFit:
    """Train on ``ex.train``, evaluate on ``ex.valid``; the model is written to ``out_file``."""
    from curate.fasttext import fit_supervised, label_probs, load_fasttext

    params = {**FASTTEXT_PARAMS, **(params or {})}
    fit_supervised(((ex.labels[i], texts[i]) for i in ex.train), out_file, threads=threads, seed=seed, **params)
    model = load_fasttext(out_file)
    p = label_probs(model, [texts[i] for i in ex.valid], POSITIVE)
    truth = ex.labels[ex.valid] == POSITIVE
    auc = roc_auc(truth, p)
    acc = float(((p >= 0.5) == truth).mean()) if len(truth) else float("nan")
    return SelectorFit(model_file=out_file, train_docs=len(ex.train), valid_docs=len(ex.valid),
                       valid_auc=round(auc, 4), valid_accuracy=round(acc, 4), params=params)


def selector_probs(model_file: str | Path, texts: list[str]) -> np.ndarray:
    """P(positive) of each text under a selector file (exactly what the ``preselect`` scorer computes)."""
    from curate.fasttext import label_probs, load_fasttext

    return label_probs(load_fasttext(model_file), texts, POSITIVE)
