"""An example of adding a scorer: this one file is all it takes (plus its test, ``test_example_scorer.py``).

``opening`` is the bits per byte of each document's first ``max_tokens`` tokens under a reference LM, a
cheap signal for boilerplate openings (licence headers, mail headers, navigation). It inherits from the
LM scorers' base, so ``--model`` / ``--set opening.model=...`` resolve store models, seed families,
local checkpoints and ``smollm2-135m`` exactly as they do for ``perplexity``. Kept in the tests: run it
by class path, ``curate score --scorers tests.scorers.example_scorer:OpeningScorer --model tiny-lm``;
dropped into ``scorers/`` it would be ``curate score --scorers opening``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa

from scorers._lm import LMScorer


class OpeningScorer(LMScorer):
    """Column ``opening_bits_per_byte``: bits per byte over each document's first ``max_tokens`` tokens."""

    name: ClassVar[str] = "opening"
    version: ClassVar[str] = "1"
    default_model: ClassVar[str] = "tiny-lm"
    single_model: ClassVar[bool] = True

    def __init__(self, model_path: str | Path, max_tokens: int = 64, window: int | None = None,
                 stride: int | None = None, batch_tokens: int | None = None, dtype: str = "auto") -> None:
        super().__init__([model_path], max_tokens=max_tokens, window=window, stride=stride,
                         batch_tokens=batch_tokens, dtype=dtype)

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([("doc_id", pa.string()), ("opening_bits_per_byte", pa.float32())])

    def score(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        self.setup()
        res = self.score_all(self._lms[0], self.texts(batch))
        with np.errstate(divide="ignore", invalid="ignore"):
            bpb = res.nll_sum / math.log(2) / res.n_bytes
        return pa.RecordBatch.from_arrays([batch.column("doc_id"), pa.array(bpb, pa.float32(), mask=res.n_bytes == 0)],
                                          schema=self.schema)
