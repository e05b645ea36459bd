"""The real heuristics scorer, slowed down or held at a gate so a test can act while a run is mid-way.

Same name, version and settings as ``heuristics``: their feature files are real heuristics
features with the same fingerprint. They live in an importable module so child processes
(and Ray workers) can load them.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pyarrow as pa

from scorers.heuristics import HeuristicsScorer


class SlowHeuristics(HeuristicsScorer):
    def __init__(self, delay: float = 0.3) -> None:
        super().__init__()
        self._delay = delay  # not a setting: the fingerprint stays that of plain heuristics

    def score(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        time.sleep(self._delay)
        return super().score(batch)


class GatedHeuristics(HeuristicsScorer):
    """Before each batch, leaves ``started-<pid>-<id>`` in ``gate`` and waits until ``gate/open`` exists.

    A test sees exactly which process is mid-shard (its feature file open under a temporary
    name) and can kill it there, then open the gate for everyone else: no timing involved.
    """

    OPEN = "open"

    def __init__(self, gate: str, timeout: float = 300.0) -> None:
        super().__init__()
        self._gate = Path(gate)  # not settings: the fingerprint stays that of plain heuristics
        self._timeout = timeout

    def mark(self, batch: pa.RecordBatch) -> None:
        """Say that a batch started (what a subclass records about it is its own)."""
        (self._gate / f"started-{os.getpid()}-{uuid.uuid4().hex[:8]}").touch()

    def score(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        self.mark(batch)
        deadline = time.monotonic() + self._timeout
        while not (self._gate / self.OPEN).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the test never opened {self._gate / self.OPEN}")
            time.sleep(0.05)
        return super().score(batch)
