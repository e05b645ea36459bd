"""Decontamination against an evaluation set: shared word 13-grams with a target corpus or SQL.

Columns: ``overlap_ngrams`` (distinct n-grams shared with the target), ``overlap_fraction`` (their
share of the document's n-grams), ``overlap_doc_id`` (the target document it shares most with),
``target_coverage`` (the share of that document's n-grams it holds) and ``contaminated``
(``target_coverage >= min_coverage`` or ``overlap_fraction >= min_fraction``). The
target's n-gram set is built once (``from_store``) and shipped inside the scorer to every worker;
its content hash is the model hash, so a changed target re-scores every shard and an unchanged one
none. See :mod:`curate.dedup.decontam`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pyarrow as pa

from curate.dedup.decontam import TargetGrams, build_target, overlap
from curate.errors import ConfigError
from curate.scoring import BaseScorer
from curate.store import Store


class DecontamScorer(BaseScorer):
    """Pool documents against one target's n-grams (build with ``from_store(store, target="heldout")``)."""

    name: ClassVar[str] = "decontam"
    version: ClassVar[str] = "1"
    model_kind: ClassVar[str | None] = "store"

    def __init__(self, target: TargetGrams, min_coverage: float = 0.5, min_fraction: float = 0.5) -> None:
        for setting, value in (("min_coverage", min_coverage), ("min_fraction", min_fraction)):
            if not 0 < value <= 1:
                raise ConfigError(f"decontam {setting} must be in (0, 1], got {value}")
        self.target = target
        self.min_coverage = min_coverage
        self.min_fraction = min_fraction
        super().__init__(target=target.name, n=target.n, min_coverage=min_coverage, min_fraction=min_fraction)

    @classmethod
    def from_store(cls, store: Store, target: str | None = None, n: int = 13, **settings: Any) -> DecontamScorer:
        if not target:
            raise ConfigError("decontam needs a target: a corpus name (e.g. heldout) or SQL returning doc_id, text "
                              "(--target, or --set decontam.target=...)")
        return cls(build_target(store, target, n), **settings)

    def model_hash(self) -> str | None:
        return self.target.content_hash()

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([("doc_id", pa.string()), ("overlap_ngrams", pa.int32()), ("overlap_fraction", pa.float32()),
                          ("overlap_doc_id", pa.string()), ("target_coverage", pa.float32()),
                          ("contaminated", pa.bool_())])

    def score(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        o = overlap(batch.column("text"), self.target)
        flagged = (o.coverage >= self.min_coverage) | (o.fraction >= self.min_fraction)
        return pa.RecordBatch.from_arrays(
            [batch.column("doc_id"), pa.array(o.ngrams, pa.int32()), pa.array(o.fraction, pa.float32()),
             pa.array(o.doc_id, pa.string()), pa.array(o.coverage, pa.float32()), pa.array(flagged, pa.bool_())],
            schema=self.schema)
