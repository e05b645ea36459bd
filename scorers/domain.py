"""Domain tags: the store's fastText domain model (:mod:`curate.domain`, ``curate train-domain``) applied to
every document: the top label, its probability and the top three."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from curate.domain import model_path
from curate.errors import ConfigError
from curate.fasttext import FastTextModelScorer, heads, predict_batch, top_k_array
from curate.store import Store


class DomainScorer(FastTextModelScorer):
    """Columns: ``domain_pred``, ``domain_prob`` and ``domain_top3`` (list of {domain, prob}, best first)."""

    name: ClassVar[str] = "domain"
    version: ClassVar[str] = "1"
    model_kind: ClassVar[str | None] = "store"

    @classmethod
    def from_store(cls, store: Store, **settings: Any) -> DomainScorer:
        """``model``: the name of a domain model ``curate train-domain`` trained (default ``domain``)."""
        if "model_path" not in settings:
            settings["model_path"] = model_path(store, settings.pop("model", "domain"))
        return cls(**settings)

    def __init__(self, model_path: str, k: int = 3, max_chars: int = 2000) -> None:
        if not Path(model_path).is_file():
            raise ConfigError(f"domain model {model_path!r} not found: run `curate train-domain` first")
        if k < 1 or max_chars < 1:
            raise ConfigError("k and max_chars must be positive")
        super().__init__(k=k, max_chars=max_chars)
        self.model_path = Path(model_path).resolve()

    @property
    def schema(self) -> pa.Schema:
        top = pa.list_(pa.struct([("domain", pa.string()), ("prob", pa.float32())]))
        return pa.schema([("doc_id", pa.string()), ("domain_pred", pa.string()), ("domain_prob", pa.float32()),
                          ("domain_top3", top)])

    def score(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        self.setup()
        texts = heads(batch.column("text"), self.settings["max_chars"])
        labels, probs = predict_batch(self._model, texts, k=self.settings["k"])
        return pa.RecordBatch.from_arrays(
            [
                batch.column("doc_id"),
                pa.array([row[0] if row else None for row in labels], pa.string()),
                pa.array(probs[:, 0], pa.float32()),
                top_k_array(labels, probs, "domain"),
            ],
            schema=self.schema,
        )
