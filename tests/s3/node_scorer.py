"""The real heuristics scorer held at a gate, leaving the Ray node and the doc_ids of every batch it starts.

Importable (Ray workers on every node load it). Same name, version and settings as ``heuristics``.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pyarrow as pa

from scorers.heuristics import HeuristicsScorer


class NodeGatedHeuristics(HeuristicsScorer):
    """Before each batch, writes ``started-<node id>-<random>`` (the batch's doc_ids, one per line) in
    ``gate``, then waits until ``gate/open`` exists: a test sees which node is mid-shard, removes it there,
    and counts the documents scored twice."""

    OPEN = "open"

    def __init__(self, gate: str, timeout: float = 300.0) -> None:
        super().__init__()
        self._gate = Path(gate)  # not settings: the fingerprint stays that of plain heuristics
        self._timeout = timeout

    def score(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        import ray

        node = ray.get_runtime_context().get_node_id()
        ids = "\n".join(batch.column("doc_id").to_pylist())
        (self._gate / f"started-{node}-{uuid.uuid4().hex[:8]}").write_text(ids)
        deadline = time.monotonic() + self._timeout
        while not (self._gate / self.OPEN).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the test never opened {self._gate / self.OPEN}")
            time.sleep(0.05)
        return super().score(batch)
