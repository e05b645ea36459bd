"""The PreSelect selector: a fastText classifier of perfect-strength documents against the lowest.

Positives are the sampled documents with a perfect predictive strength; negatives an
equal number of the lowest-scoring ones (the authors' recipe). Two variants serve small
samples (a few thousand scored documents instead of the paper's millions): positives as a
fixed top share by how closely a document's losses track the target's across the family
(:func:`loss_correlation`, a continuous form of the strength: a document whose losses follow the
target's order but for one pair of near-equal members still counts), and every other sampled
document as a negative, so the selector also learns to reject kinds of text that are neither
best nor worst (see :func:`pick_examples`). fastText is trained with
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


NEGATIVES = ("lowest", "rest")


def check_labelling(positive_share: float | None, negatives: str) -> None:
    """Refuse a labelling :func:`pick_examples` cannot apply (``train`` calls it before the family trains)."""
    if negatives not in NEGATIVES:
        raise ConfigError(f"negatives must be one of {', '.join(NEGATIVES)}, got {negatives!r}")
    if positive_share is not None and not 0 < positive_share < 1:
        raise ConfigError(f"positive_share must be in (0, 1), got {positive_share}")


def loss_correlation(bpc: np.ndarray, target_bpc: np.ndarray) -> np.ndarray:
    """Per document, the Pearson correlation over the family between its losses and the target's.

    ``bpc`` is (models, docs), ``target_bpc`` (models,), both in the same member order. 1 means the
    document's losses rise and fall across the members exactly as the target's do. Unlike the strength
    (an integer 0..15) it weighs a swap of two members by how far apart they are: for a two-domain target
    (math + code) the family's order is set by one domain, and the other domain's documents, which swap
    only the two nearly equal members at the top, were never perfect.
    """
    d = np.asarray(bpc, dtype=np.float64)
    d = d - d.mean(axis=0)
    t = np.asarray(target_bpc, dtype=np.float64)
    t = t - t.mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (d * t[:, None]).sum(axis=0) / np.sqrt((d * d).sum(axis=0) * (t * t).sum())
    return np.nan_to_num(r, nan=-1.0)


def pick_examples(strength: np.ndarray, perfect: int, valid_fraction: float, *, positive_share: float | None = None,
                  share_by: np.ndarray | None = None, negatives: str = "lowest") -> Examples:
    """Positives, negatives and a split stratified by class, deterministic in sample order.

    - Positives have a strength of at least ``perfect`` (the paper: the maximum; a lower bar lets one of
      the pairs disagree); with ``positive_share`` instead, the top share of the sample by ``share_by``
      (higher first; :func:`loss_correlation` in :func:`curate.preselect.train`), so their number does not
      depend on how many documents happen to be perfect.
    - ``negatives="lowest"`` (the paper): as many as there are positives, the lowest strengths; when
      positives outnumber the rest they are cut to balance. ``"rest"``: every other sampled document. A
      small sample's lowest strengths are often one kind of text (e.g. all prose for a code target), and a
      selector never shown the other kinds ranks them by accident; the classes are then unbalanced, which
      does not matter for ranking by P(positive).

    The sample arrives in a seeded hash order, so "the first k" is a reproducible random choice.
    """
    if not 0 < valid_fraction < 0.5:
        raise ConfigError(f"valid_fraction must be in (0, 0.5), got {valid_fraction}")
    check_labelling(positive_share, negatives)
    strength = np.asarray(strength)
    if positive_share is not None:
        if share_by is None or len(share_by) != len(strength):
            raise ConfigError("positive_share needs share_by: one score per sampled document")
        score = np.asarray(share_by, dtype=np.float64)
        order = np.lexsort((np.arange(len(strength)), -score))  # highest first, ties in sample order
        n_pos = max(1, round(len(strength) * positive_share))
        pos, rest = np.sort(order[:n_pos]), np.sort(order[n_pos:])
    else:
        pos = np.flatnonzero(strength >= perfect)
        rest = np.flatnonzero(strength < perfect)
    if negatives == "lowest":
        k = min(len(pos), len(rest))
        pos = pos[:k]
        neg = rest[np.argsort(strength[rest], kind="stable")][:k]  # the k lowest, ties in sample order
    else:
        neg = rest

    def cut(idx: np.ndarray) -> int:
        return max(1, round(len(idx) * valid_fraction)) if len(idx) >= 2 and min(len(pos), len(neg)) >= 2 else 0

    vp, vn = cut(pos), cut(neg)
    valid = np.concatenate([pos[len(pos) - vp:], neg[len(neg) - vn:]])
    train = np.concatenate([pos[:len(pos) - vp], neg[:len(neg) - vn]])
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
