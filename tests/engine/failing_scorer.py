"""A real scorer (heuristics) that raises on shards holding a poisoned document: drives the failure tests.

It lives in an importable module so Ray workers can unpickle it.
"""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from scorers.heuristics import HeuristicsScorer


class FailingScorer(HeuristicsScorer):
    name: ClassVar[str] = "failing"

    def __init__(self, poison: str = "POISON-PILL") -> None:
        super().__init__()
        self.settings["poison"] = poison

    def score(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if pc.any(pc.match_substring(batch.column("text"), self.settings["poison"])).as_py():
            raise ValueError("poisoned document in this shard")
        return super().score(batch)
