"""Perplexity of a reference causal LM per document: NLL, perplexity, bits per byte, tokens scored.

- ``nll``: mean NLL in nats per scored token (each token predicted from what precedes it; the
  first from BOS, so it equals the model's own ``labels=`` loss on ``[BOS] + ids``).
- ``bits_per_byte``: summed NLL / ln 2 / UTF-8 bytes of the scored span; comparable across
  tokenizers (PreSelect normalises the same way, by characters).
- Documents are capped at ``max_tokens`` (``truncated`` says so) and longer than ``window``
  are scored in strided windows (see :mod:`curate.lm.windows`).

Every window of an Arrow batch is sorted by length and packed into padded batches of about
``batch_tokens`` tokens: for tiny models the per-forward overhead dominates, so this runs
many times faster than one document per forward. A document's scores do not depend on what
else is in the batch (up to float rounding; tested). Torch threads are the engine's business:
it sizes them to the worker's CPU share before ``setup``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import ConfigError
from curate.lm.load import DTYPES, check_model_dir, load_causal_lm, model_context, weights_sha256
from scorers.base import BaseScorer

DEFAULT_WINDOW = 512


class PerplexityScorer(BaseScorer):
    """Columns: ``nll``, ``ppl``, ``bits_per_byte`` (null for empty documents), ``n_tokens``, ``truncated``."""

    name: ClassVar[str] = "perplexity"
    version: ClassVar[str] = "1"

    def __init__(self, model_path: str, max_tokens: int = 1024, window: int | None = None,
                 stride: int | None = None, batch_tokens: int = 16384, dtype: str = "float32") -> None:
        path = check_model_dir(model_path)
        context = model_context(path)
        # a window beyond the positions the model was trained on gives meaningless losses
        window = window or min(DEFAULT_WINDOW, context or DEFAULT_WINDOW)
        if context and window > context:
            raise ConfigError(f"window {window} exceeds the model's context of {context} tokens")
        stride = stride or window // 2
        if window < 2 or not 1 <= stride < window:
            raise ConfigError(f"need window >= 2 and 1 <= stride < window (got {window}, {stride})")
        if max_tokens < 1 or batch_tokens < window:
            raise ConfigError("max_tokens must be positive and batch_tokens at least one window")
        if dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}")
        # batch_tokens only changes speed (and float rounding), so it stays out of the fingerprint
        super().__init__(max_tokens=max_tokens, window=window, stride=stride, dtype=dtype)
        self.batch_tokens = batch_tokens
        self.model_path = path
        self._lm: Any = None

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([("doc_id", pa.string()), ("nll", pa.float32()), ("ppl", pa.float32()),
                          ("bits_per_byte", pa.float32()), ("n_tokens", pa.int32()), ("truncated", pa.bool_())])

    def config(self) -> dict[str, Any]:
        return {**self.settings, "model": Path(self.model_path).name}

    def model_hash(self) -> str | None:
        return weights_sha256(self.model_path)

    def setup(self) -> None:
        if self._lm is None:
            self._lm = load_causal_lm(self.model_path, dtype=self.settings["dtype"])

    def __getstate__(self) -> dict[str, Any]:
        # shipped to Ray actors before setup: never pickle a loaded model
        return {**self.__dict__, "_lm": None}

    def score(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        from curate.lm.score import score_texts

        self.setup()
        text = batch.column("text")
        if text.null_count:
            text = pc.fill_null(text, "")
        s = self.settings
        res = score_texts(self._lm, text.to_pylist(), max_tokens=s["max_tokens"], window=s["window"],
                          stride=s["stride"], batch_tokens=self.batch_tokens)
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
