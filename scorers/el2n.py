"""EL2N (Data Diet) for language models: mean over tokens of ||softmax - one_hot||_2, averaged over proxies.

Paul et al. score an example by the L2 norm of its error vector early in training,
averaged over several independently initialised networks. For a causal LM the
example is a document and the error vector is per token, so the per-document
score is the mean over its scored tokens. The proxies are tiny LMs trained
briefly with different seeds (``curate train-lm --name proxy --seeds 3`` writes
``proxy-s0..s2``; ``--set el2n.model=proxy`` picks them all up).

Columns: ``el2n`` (mean over proxies), ``el2n_std`` (spread across proxies: how
much the seeds agree), ``n_tokens``. High EL2N = hard for the proxies.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa

from curate.lm.nll import token_el2n
from scorers._lm import LMScorer


class EL2NScorer(LMScorer):
    """EL2N per document, averaged over ``model_paths`` (one proxy LM per seed)."""

    name: ClassVar[str] = "el2n"
    version: ClassVar[str] = "1"

    def __init__(self, model_paths: list[str | Path], max_tokens: int = 512, window: int | None = None,
                 stride: int | None = None, batch_tokens: int | None = None, dtype: str = "auto",
                 device: str = "auto", gpu_share: float | None = None) -> None:
        if isinstance(model_paths, (str, Path)):
            model_paths = [model_paths]
        super().__init__(list(model_paths), max_tokens=max_tokens, window=window, stride=stride,
                         batch_tokens=batch_tokens, dtype=dtype, device=device, gpu_share=gpu_share)

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([("doc_id", pa.string()), ("el2n", pa.float32()), ("el2n_std", pa.float32()),
                          ("n_tokens", pa.int32())])

    def score(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        self.setup()
        texts = self.texts(batch)
        per_model = []
        n_tokens = np.zeros(len(texts), dtype=np.int64)
        for lm in self._lms:
            res = self.score_all(lm, texts, token_el2n)
            n_tokens = res.n_tokens
            with np.errstate(divide="ignore", invalid="ignore"):
                per_model.append(res.nll_sum / res.n_tokens)
        stack = np.stack(per_model)
        empty = n_tokens == 0
        return pa.RecordBatch.from_arrays(
            [
                batch.column("doc_id"),
                pa.array(stack.mean(0).astype(np.float32), pa.float32(), mask=empty),
                pa.array(stack.std(0).astype(np.float32), pa.float32(), mask=empty),
                pa.array(n_tokens.astype(np.int32), pa.int32()),
            ],
            schema=self.schema,
        )
