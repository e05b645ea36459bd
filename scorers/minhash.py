"""MinHash LSH band hashes per document: the features near-duplicate clustering joins on.

Columns: ``bands`` (``list<uint64>``, one hash per LSH band; null for a document with no words) and
``n_shingles`` (word n-grams the signature was taken over). Written per shard and fingerprinted
like every scorer, so a new corpus or shard is hashed once and old ones never again; ``curate
dedup`` then clusters all stored band hashes (:mod:`curate.dedup.cluster`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import pyarrow as pa

from curate.dedup.minhash import MinHashSettings, document_bands
from curate.scoring import BaseScorer


class MinHashScorer(BaseScorer):
    """Word ``ngram`` shingles, ``bands × rows`` MinHash (default 5-grams, 14 × 8 = 112 hashes)."""

    name: ClassVar[str] = "minhash"
    version: ClassVar[str] = "1"

    def __init__(self, ngram: int = 5, bands: int = 14, rows: int = 8, hashes: int | None = None,
                 seed: int = 1) -> None:
        self.minhash = MinHashSettings(ngram=ngram, bands=bands, rows=rows, hashes=hashes, seed=seed)
        super().__init__(**self.minhash.config())

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([("doc_id", pa.string()), ("bands", pa.list_(pa.uint64())), ("n_shingles", pa.int32())])

    def config(self) -> dict[str, Any]:
        return self.minhash.config()

    def score(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        bands, counts = document_bands(batch.column("text"), self.minhash)
        return pa.RecordBatch.from_arrays([batch.column("doc_id"), bands, counts], schema=self.schema)
