"""MATES influence per document: the influence model's predicted (z-scored) post-step reference loss.

``mates_influence`` is in oracle standard deviations; lower = the document is
predicted to lower the reference loss more = better. A MATES stage writes its
own feature table (``table``, e.g. ``mates_main_s2``) so every stage's
predictions stay queryable, and passes its candidate ``pool`` (a Parquet file
of doc_ids): only those documents are encoded, every other row is null, so a
stage costs its pool, not the corpus, while the table still holds exactly one
row per document. Without a pool every document is scored.

The encoder and head load once per worker (never pickled to Ray actors).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import ConfigError
from curate.hashing import file_sha256
from curate.mates.influence import TARGET, InfluenceModel, model_sha256, read_card
from curate.scoring import BaseScorer
from curate.store import Store, check_name


class MatesScorer(BaseScorer):
    """Column ``mates_influence`` (float32; null outside ``pool``). The feature table is named ``table``."""

    name: ClassVar[str] = "mates"
    version: ClassVar[str] = "1"
    model_kind: ClassVar[str | None] = "store"

    @classmethod
    def from_store(cls, store: Store, **settings: Any) -> MatesScorer:
        """``model``: an influence model a MATES stage trained into the store (default ``mates``)."""
        from curate.mates.influence import store_model_path

        if "model_path" not in settings:
            settings["model_path"] = store_model_path(store, settings.pop("model", "mates"))
        return cls(**settings)

    def __init__(self, model_path: str | Path, table: str = "mates", pool: str | Path | None = None,
                 batch_tokens: int = 8192) -> None:
        card = read_card(model_path)
        if pool is not None and not Path(pool).is_file():
            raise ConfigError(f"MATES pool file {str(pool)!r} not found (a Parquet file with a doc_id column)")
        super().__init__(model=Path(model_path).name, kind=card["kind"], chunk_tokens=card["chunk_tokens"],
                         max_chunks=card["max_chunks"], pool_sha256=file_sha256(pool) if pool else None)
        # the engine names the feature table after scorer.name: one table per stage
        self.name = check_name("scorer", table)  # type: ignore[misc]
        self.model_path = Path(model_path)
        self.pool = Path(pool) if pool is not None else None
        self.batch_tokens = batch_tokens  # speed only: not in the fingerprint
        self._model: InfluenceModel | None = None
        self._pool_ids: set[str] | None = None

    @property
    def schema(self) -> pa.Schema:
        meta = {"model": self.settings["model"], "target": TARGET,
                "null": "document outside the stage's candidate pool" if self.pool else "empty document"}
        return pa.schema([("doc_id", pa.string()), pa.field("mates_influence", pa.float32(), metadata=meta)])

    def model_hash(self) -> str:
        return model_sha256(self.model_path)

    def setup(self) -> None:
        if self._model is None:
            self._model = InfluenceModel.load(self.model_path, batch_tokens=self.batch_tokens)
        if self.pool is not None and self._pool_ids is None:
            import pyarrow.parquet as pq

            self._pool_ids = set(pq.read_table(self.pool, columns=["doc_id"]).column(0).to_pylist())

    def __getstate__(self) -> dict[str, Any]:
        # shipped to Ray actors before setup: never pickle a loaded model or the pool set
        return {**self.__dict__, "_model": None, "_pool_ids": None}

    def score(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        self.setup()
        assert self._model is not None
        ids = batch.column("doc_id").to_pylist()
        text = batch.column("text")
        texts = (pc.fill_null(text, "") if text.null_count else text).to_pylist()
        rows = [i for i, (d, t) in enumerate(zip(ids, texts)) if t and (self._pool_ids is None or d in self._pool_ids)]
        out = np.zeros(len(ids), dtype=np.float32)
        if rows:
            out[rows] = self._model.predict([texts[i] for i in rows]).astype(np.float32)
        missing = np.ones(len(ids), dtype=bool)
        missing[rows] = False
        return pa.RecordBatch.from_arrays([batch.column("doc_id"), pa.array(out, pa.float32(), mask=missing)],
                                          schema=self.schema)
