"""Score many texts with a loaded LM: encode, window, bucket, forward, and sum a per-token quantity per document."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curate.lm.load import LoadedLM
from curate.lm.nll import TokenFn, batch_token_sums, token_nll
from curate.lm.windows import Segment, bucket_batches, segments


@dataclass
class TextScores:
    """Per document, in input order: summed per-token value (NLL in nats by default), tokens scored,
    bytes they cover, capped or not."""

    nll_sum: np.ndarray  # float64: the sum of ``fn`` over the document's tokens
    n_tokens: np.ndarray  # int64
    n_bytes: np.ndarray  # int64
    truncated: np.ndarray  # bool


def score_texts(lm: LoadedLM, texts: list[str], *, max_tokens: int, window: int, stride: int,
                batch_tokens: int, fn: TokenFn = token_nll) -> TextScores:
    """Summed ``fn`` (default: NLL) per text under ``lm``; every text is ``[BOS] + tokens``, see
    :mod:`curate.lm.windows`."""
    import torch

    enc = lm.encoder
    docs = enc.encode(texts, max_tokens)
    segs: list[Segment] = []
    for i, d in enumerate(docs):
        if len(d.ids) == 0:
            continue
        seq = enc.with_bos(d.ids)
        # window + 1 positions = window model inputs: the last position is only a target
        segs.extend(segments(i, seq, window + 1, stride))
    nll = np.zeros(len(texts), dtype=np.float64)
    with torch.inference_mode():
        for b in bucket_batches(segs, batch_tokens, enc.pad_id):
            np.add.at(nll, b.docs, batch_token_sums(lm.model, b, fn))
    n_tokens = np.array([len(d.ids) for d in docs], dtype=np.int64)
    if enc.bos_id is None:  # without a BOS the first token has nothing to be predicted from
        n_tokens = np.maximum(n_tokens - 1, 0)
    return TextScores(nll, n_tokens, np.array([d.n_bytes for d in docs], dtype=np.int64),
                      np.array([d.truncated for d in docs], dtype=bool))
