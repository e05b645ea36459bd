"""The token stream a built mixture defines, in one place for the loader, the exports and lineage.

Each document's ids (``bytes``: its UTF-8 bytes; a Hugging Face tokenizer: the ids the build stored)
then EOS, in training order, cut into consecutive windows of ``seq_len + 1`` tokens; rank r's
DataLoader worker k of K takes windows ``i`` with ``i % (world_size * K) == r * K + k``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


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
    return np.insert(flat.astype(dtype), np.cumsum(lengths), dtype.type(eos)), (lengths + 1).astype(np.int64)


def window_partition(rank: int, world_size: int, worker: int, num_workers: int) -> tuple[int, int]:
    """(first window, stride) of rank ``rank``'s DataLoader worker ``worker`` of ``num_workers`` (>= 1)."""
    return rank * num_workers + worker, world_size * num_workers
