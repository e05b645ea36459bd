"""The token stream a built mixture defines, in one place for the loader, the exports and lineage.

Each document's ids (``bytes``: its UTF-8 bytes; a Hugging Face tokenizer: the ids the build stored)
then EOS, in training order, cut into consecutive windows of ``seq_len + 1`` tokens; rank r's
DataLoader worker k of K takes windows ``i`` with ``i % (world_size * K) == r * K + k``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: documents at least this long on average are copied into place one by one (a Python step each, ~0.5 µs);
#: shorter ones go through one vectorised ``np.insert`` (~0.6 ns more per token)
LOOP_MIN_MEAN = 1024


def document_tokens(col: pa.Array, eos: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Documents (a text or a token-id list column) as one ``dtype`` array with EOS after each, and their
    lengths with the EOS counted."""
    if pa.types.is_large_string(col.type) or pa.types.is_string(col.type):
        values = pc.cast(col, pa.large_binary())
        bufs = values.buffers()
        offsets = np.frombuffer(bufs[1], dtype=np.int64)[values.offset:values.offset + len(values) + 1]
        flat = np.frombuffer(bufs[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    else:
        offsets = col.offsets.to_numpy().astype(np.int64)
        flat = col.values.to_numpy()[offsets[0]:offsets[-1]]
    lengths = np.diff(offsets)
    if len(flat) < LOOP_MIN_MEAN * len(lengths):
        return np.insert(flat.astype(dtype), np.cumsum(lengths), dtype.type(eos)), (lengths + 1).astype(np.int64)
    tokens = np.empty(len(flat) + len(lengths), dtype)
    ends = np.cumsum(lengths + 1)  # one past each document's EOS
    within = (offsets - offsets[0]).tolist()
    for a, b, at in zip(within[:-1], within[1:], (ends - lengths - 1).tolist()):
        tokens[at:at + b - a] = flat[a:b]  # cast on the copy: no widened intermediate
    tokens[ends - 1] = eos
    return tokens, (lengths + 1).astype(np.int64)


def window_partition(rank: int, world_size: int, worker: int, num_workers: int) -> tuple[int, int]:
    """(first window, stride) of rank ``rank``'s DataLoader worker ``worker`` of ``num_workers`` (>= 1)."""
    return rank * num_workers + worker, world_size * num_workers
