"""The PreSelect selector's card: what ``curate.preselect.train`` writes and its report reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class PreSelectCard:
    """What a PreSelect selector is, what family and documents it came from, and how well it separates them."""

    name: str
    family: list[dict[str, Any]]  # ranked best first: name, source, params, target_bpc, target_loss, rank ...
    ranked_by: str
    target: str
    pool_sql: str
    sample_docs: int
    max_chars: int
    strength: dict[str, Any]  # max, distribution, perfect, perfect_share, mean_normalized
    positives: int
    negatives: int
    class_balance: dict[str, dict[str, int]]  # split -> label -> docs
    positives_by_domain: dict[str, dict[str, int]]  # domain -> sampled, positives, negatives
    train_docs: int
    valid_docs: int
    valid_auc: float
    valid_accuracy: float
    score_quantiles: dict[str, float]  # P(positive) over the whole sample: min, p10, p50, p90, max
    positive_label: str
    negative_label: str
    fasttext: dict[str, Any]
    preprocess: dict[str, Any]
    sha256: str
    request: str
    seconds: dict[str, float]
    created: str
    report: list[str] = field(default_factory=list)
    labelling: dict[str, Any] = field(default_factory=dict)  # how positives and negatives were chosen
