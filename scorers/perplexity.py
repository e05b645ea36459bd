"""Perplexity of a reference causal LM per document: NLL, perplexity, bits per byte, tokens scored.

- ``nll``: mean NLL in nats per scored token (each token predicted from what precedes it; the
  first from BOS, so it equals the model's own ``labels=`` loss on ``[BOS] + ids``).
- ``bits_per_byte``: summed NLL / ln 2 / UTF-8 bytes of the scored span; comparable across
  tokenizers (PreSelect normalises the same way, by characters).
- Documents are capped at ``max_tokens`` (``truncated`` says so) and longer than ``window``
  are scored in strided windows (see :mod:`curate.lm.windows`).

Every window of an Arrow batch is sorted by length and packed into padded batches of about
``batch_tokens`` tokens (default: 16,384 for small models, one window for models of 20M+
parameters, see :func:`scorers._lm.auto_batch_tokens`): for tiny models the per-forward overhead dominates, so this runs
many times faster than one document per forward. A document's scores do not depend on what
else is in the batch (up to float rounding; tested). Torch threads are the engine's business:
it sizes them to the worker's CPU share before ``setup``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa

from scorers._lm import LMScorer


class PerplexityScorer(LMScorer):
    """Columns: ``nll``, ``ppl``, ``bits_per_byte`` (null for empty documents), ``n_tokens``, ``truncated``."""

    name: ClassVar[str] = "perplexity"
    version: ClassVar[str] = "1"
    bf16_any_size: ClassVar[bool] = True  # batched forwards are FLOP-bound even for tiny models
    default_model: ClassVar[str] = "tiny-lm"
    single_model: ClassVar[bool] = True

    def __init__(self, model_path: str | Path, max_tokens: int = 1024, window: int | None = None,
                 stride: int | None = None, batch_tokens: int | None = None, dtype: str = "auto",
                 device: str = "auto", gpu_share: float | None = None) -> None:
        super().__init__([model_path], max_tokens=max_tokens, window=window, stride=stride,
                         batch_tokens=batch_tokens, dtype=dtype, device=device, gpu_share=gpu_share)

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([("doc_id", pa.string()), ("nll", pa.float32()), ("ppl", pa.float32()),
                          ("bits_per_byte", pa.float32()), ("n_tokens", pa.int32()), ("truncated", pa.bool_())])

    def config(self) -> dict:
        # one model: keep the fingerprint of version 1 ("model", not "models")
        return {**self.settings, "model": self.model_path.name, **self.scoring()}

    def score(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        self.setup()
        res = self.score_all(self._lms[0], self.texts(batch))
        empty = res.n_tokens == 0
        with np.errstate(divide="ignore", invalid="ignore"):
            nll = res.nll_sum / res.n_tokens
            bpb = res.nll_sum / math.log(2) / res.n_bytes
        return pa.RecordBatch.from_arrays(
            [
                batch.column("doc_id"),
                pa.array(nll.astype(np.float32), pa.float32(), mask=empty),
                pa.array(np.exp(nll).astype(np.float32), pa.float32(), mask=empty),
                pa.array(bpb.astype(np.float32), pa.float32(), mask=empty | (res.n_bytes == 0)),
                pa.array(res.n_tokens.astype(np.int32), pa.int32()),
                pa.array(res.truncated, pa.bool_()),
            ],
            schema=self.schema,
        )
