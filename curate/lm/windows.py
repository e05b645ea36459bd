"""Long documents as overlapping windows, and windows as length-bucketed padded batches.

(``score_texts`` asks for windows of ``window + 1`` positions: the model reads all but the last
position of a segment, which is only a target, so a window of model inputs scores ``window``
tokens and a ``window``-token document plus BOS is one forward, not two.)

A document of ``n`` tokens is scored as the sequence ``[BOS] + ids``: every
real token is predicted from what precedes it, the first from BOS. A sequence
longer than the model's ``window`` is cut into windows that each end ``stride``
tokens after the previous one and start ``window`` tokens before their end,
so every token is scored exactly once, with at least ``window - stride``
tokens of context once the document is longer than one window (the Hugging
Face "strided perplexity" recipe, with full context in the last window too).

Batching sorts windows by length and packs neighbours together under a token
budget, so padding stays small; each window remembers its document, so
results are put back in input order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass
class Segment:
    """One model input: ``ids``; its last ``n_targets`` tokens are the ones scored."""

    doc: int
    ids: np.ndarray
    n_targets: int


def windows(n_seq: int, window: int, stride: int) -> Iterator[tuple[int, int, int]]:
    """(start, end, first_target) over a sequence of ``n_seq`` positions (position 0 is never a target)."""
    if window < 2 or not 1 <= stride <= window - 1:
        raise ValueError(f"need window >= 2 and 1 <= stride < window, got window={window}, stride={stride}")
    done = 1
    end = min(window, n_seq)
    while done < n_seq:
        start = max(0, end - window)
        yield start, end, done
        done = end
        end = min(done + stride, n_seq)


def segments(doc: int, seq: np.ndarray, window: int, stride: int) -> list[Segment]:
    """A document's sequence (BOS first) as scoring segments."""
    return [Segment(doc, seq[s:e], e - f) for s, e, f in windows(len(seq), window, stride)]


@dataclass
class Batch:
    """Right-padded segments: ``ids`` (B, L), ``lengths`` (B,), ``n_targets`` (B,), ``docs`` (B,)."""

    ids: np.ndarray
    lengths: np.ndarray
    n_targets: np.ndarray
    docs: np.ndarray


def bucket_batches(segs: list[Segment], batch_tokens: int, pad_id: int, max_rows: int = 256) -> Iterator[Batch]:
    """Sort by length (longest first, so memory trouble shows at once) and pack under ``batch_tokens`` padded tokens."""
    order = sorted(range(len(segs)), key=lambda i: (-len(segs[i].ids), segs[i].doc, i))
    group: list[Segment] = []
    for i in order:
        seg = segs[i]
        width = len(group[0].ids) if group else len(seg.ids)  # the group's first is its longest
        if group and (width * (len(group) + 1) > batch_tokens or len(group) >= max_rows):
            yield _pad(group, pad_id)
            group = []
        group.append(seg)
    if group:
        yield _pad(group, pad_id)


def _pad(group: list[Segment], pad_id: int) -> Batch:
    lengths = np.array([len(s.ids) for s in group], dtype=np.int64)
    ids = np.full((len(group), int(lengths.max())), pad_id, dtype=np.int64)
    for row, s in enumerate(group):
        ids[row, : len(s.ids)] = s.ids
    return Batch(ids, lengths, np.array([s.n_targets for s in group], dtype=np.int64),
                 np.array([s.doc for s in group], dtype=np.int64))
