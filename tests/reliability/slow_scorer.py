"""The real heuristics scorer, slowed down per batch so a test can act while a run is mid-way.

Same name, version and settings as ``heuristics``: its feature files are real heuristics
features with the same fingerprint. It lives in an importable module so child processes
(and Ray workers) can load it.
"""

from __future__ import annotations

import time

import pyarrow as pa

from scorers.heuristics import HeuristicsScorer


class SlowHeuristics(HeuristicsScorer):
    def __init__(self, delay: float = 0.3) -> None:
        super().__init__()
        self._delay = delay  # not a setting: the fingerprint stays that of plain heuristics

    def score(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        time.sleep(self._delay)
        return super().score(batch)
