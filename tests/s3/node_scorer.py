"""The real heuristics scorer held at a gate, leaving the Ray node and the doc_ids of every batch it starts.

Importable (Ray workers on every node load it). Same name, version and settings as ``heuristics``.
"""

from __future__ import annotations

import uuid

import pyarrow as pa

from tests.reliability.slow_scorer import GatedHeuristics


class NodeGatedHeuristics(GatedHeuristics):
    """Before each batch, writes ``started-<node id>-<random>`` (the batch's doc_ids, one per line) in
    ``gate``, then waits until ``gate/open`` exists: a test sees which node is mid-shard, removes it there,
    and counts the documents scored twice."""

    def mark(self, batch: pa.RecordBatch) -> None:
        import ray

        node = ray.get_runtime_context().get_node_id()
        (self._gate / f"started-{node}-{uuid.uuid4().hex[:8]}").write_text("\n".join(batch.column("doc_id").to_pylist()))
