"""The real heuristics scorer, logging every doc_id it scores, so a test can count the documents scored twice.

Same name, version and settings as ``heuristics`` (the log is not a setting): its feature files are
heuristics features with the same fingerprint. In an importable module so child processes and Ray
workers can load it.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

import pyarrow as pa

from scorers.heuristics import HeuristicsScorer


class LoggedHeuristics(HeuristicsScorer):
    """Appends the doc_ids of each batch it scored to ``log``; with ``kill_at``, SIGKILLs its own process
    once (across processes: a marker file beside the log) after logging its ``kill_at``-th batch; with
    ``fail_at``, raises once there instead."""

    def __init__(self, log: str, kill_at: int = 0, fail_at: int = 0) -> None:
        super().__init__()
        self._log, self._kill_at, self._fail_at, self._batches = Path(log), kill_at, fail_at, 0

    def score(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        out = super().score(batch)
        with self._log.open("a") as f:
            f.write("".join(f"{d}\n" for d in batch.column("doc_id").to_pylist()))
        self._batches += 1
        marker = self._log.with_suffix(".killed")
        if self._kill_at and self._batches == self._kill_at and not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        if self._fail_at and self._batches == self._fail_at and not marker.exists():
            marker.write_text(str(os.getpid()))
            raise RuntimeError("a failure planted by the test")
        return out


def scored_twice(log: Path) -> int:
    """How many documents the log shows scored more than once (each extra time counts)."""
    counts = Counter(log.read_text().split())
    return sum(n - 1 for n in counts.values())
