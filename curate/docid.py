"""Stable, content-derived document ids.

``doc_id`` = 128-bit BLAKE2b of (corpus, original id) when the input has ids,
else of (corpus, text). Re-ingesting the same input therefore yields the same
ids, and features computed in one run join documents from another.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

DIGEST_BYTES = 16
_SEP = b"\x1f"


def _digest(corpus: bytes, kind: bytes, payload: bytes) -> bytes:
    return hashlib.blake2b(corpus + _SEP + kind + _SEP + payload, digest_size=DIGEST_BYTES).digest()


def doc_digests(corpus: str, orig_ids: Iterable[str | None], texts: Iterable[bytes]) -> np.ndarray:
    """Raw 16-byte digests (numpy ``S16``) for a batch; ids win over text when present."""
    c = corpus.encode()
    out = [
        _digest(c, b"id", oid.encode()) if oid is not None else _digest(c, b"text", text)
        for oid, text in zip(orig_ids, texts)
    ]
    return np.array(out, dtype=f"S{DIGEST_BYTES}")


def doc_id(corpus: str, text: str, orig_id: str | None = None) -> str:
    """The id curate assigns to one document (hex string, 32 characters).

    Through ``to_hex`` like ingest: numpy's ``S16`` drops trailing NUL bytes on element
    access, so ``digests[0].hex()`` was short for 1 id in 256 and matched no stored id.
    """
    return to_hex(doc_digests(corpus, [orig_id], [text.encode()]))[0]


def to_hex(digests: np.ndarray) -> list[str]:
    # S16 strips trailing NULs on element access, so go through the raw buffer
    raw = np.ascontiguousarray(digests).view(np.uint8).reshape(-1, DIGEST_BYTES)
    return [row.tobytes().hex() for row in raw]


def from_hex(ids: Iterable[str]) -> np.ndarray:
    joined = bytes.fromhex("".join(ids))
    return np.frombuffer(joined, dtype=f"S{DIGEST_BYTES}").copy()


class SeenIds:
    """A compact set of digests (16 bytes per id, not ~90 as a Python set).

    Sorted runs are probed with ``searchsorted``; small runs are merged into the
    main one once they grow, so lookups stay vectorized and memory stays at the
    size of the ids themselves.
    """

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(r) for r in self._runs)

    def _contains(self, digests: np.ndarray) -> np.ndarray:
        found = np.zeros(len(digests), dtype=bool)
        for run in self._runs:
            pos = np.searchsorted(run, digests)
            pos[pos == len(run)] = 0
            found |= (run[pos] == digests) if len(run) else False
        return found

    def add_new(self, digests: np.ndarray) -> np.ndarray:
        """Mask of entries that are new (not seen before, first within the batch); records them."""
        if len(digests) == 0:
            return np.zeros(0, dtype=bool)
        first = np.zeros(len(digests), dtype=bool)
        first[np.unique(digests, return_index=True)[1]] = True
        new = first & ~self._contains(digests)
        if new.any():
            self._runs.append(np.sort(digests[new]))
            self._compact()
        return new

    def _compact(self) -> None:
        # keep runs roughly geometric: merge the tail while it is not much smaller than its neighbour
        while len(self._runs) > 1 and len(self._runs[-1]) * 4 >= len(self._runs[-2]):
            b, a = self._runs.pop(), self._runs.pop()
            self._runs.append(np.sort(np.concatenate([a, b])))
        if len(self._runs) > 16:
            self._runs = [np.sort(np.concatenate(self._runs))]
