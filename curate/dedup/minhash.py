"""MinHash signatures and LSH band hashes of a batch of documents.

A document's signature is ``bands × rows`` MinHash values over its shingle hashes (rensa's
RMinHash, computed in Rust from the flat hash buffer); each band of ``rows`` consecutive values is
folded into one 64-bit band hash. Two documents whose shingle sets have Jaccard similarity ``s``
share at least one band hash with probability ``1 - (1 - s**rows)**bands`` — the LSH curve. The
FineWeb / datatrove defaults (word 5-grams, 14 bands × 8 rows = 112 hashes) make a pair at 0.8 a
candidate 92% of the time, at 0.5 5%.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from importlib.metadata import version
from typing import Any

import numpy as np
import pyarrow as pa
import rensa

from curate.dedup.shingles import shingle_hashes
from curate.errors import ConfigError

_EMPTY = np.uint32(0xFFFFFFFF)  # what rensa reports for a document without shingles
# splitmix64 finaliser constants: spread the folded band so its 64 bits are all used
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


@dataclass(frozen=True)
class MinHashSettings:
    """What a signature depends on; checked before any work."""

    ngram: int = 5
    bands: int = 14
    rows: int = 8
    hashes: int | None = None  # optional: must equal bands * rows when given
    seed: int = 1

    def __post_init__(self) -> None:
        for field in ("ngram", "bands", "rows"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"minhash {field} must be a positive integer, got {value!r}")
        if self.hashes is not None and self.hashes != self.bands * self.rows:
            raise ConfigError(f"minhash hashes={self.hashes} is not bands × rows = {self.bands} × {self.rows} "
                              f"= {self.bands * self.rows}: change hashes, bands or rows so they multiply")

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows

    def config(self) -> dict[str, Any]:
        """The settings plus what else changes a hash (rensa's algorithm), for fingerprints."""
        out = {k: v for k, v in asdict(self).items() if k != "hashes"}
        out["rensa"] = f"{version('rensa')}/{rensa.RMinHash.ALGORITHM_VERSION}"
        return out

    def candidate_probability(self, similarity: float | np.ndarray) -> float | np.ndarray:
        """P(two documents at this Jaccard similarity share a band): the LSH curve."""
        return 1 - (1 - np.asarray(similarity, dtype=float) ** self.rows) ** self.bands


def signatures(text: pa.Array | pa.ChunkedArray, settings: MinHashSettings) -> tuple[np.ndarray, np.ndarray]:
    """(``uint32[documents, bands*rows]`` signatures, ``int64`` shingle counts); a document without
    shingles has count 0 and a meaningless signature."""
    sh = shingle_hashes(text, settings.ngram)
    if len(sh) == 0:
        return np.empty((0, settings.num_perm), np.uint32), np.empty(0, np.int64)
    matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(
        sh.hashes, sh.offsets.astype(np.uint64), settings.num_perm, settings.seed)
    return np.asarray(matrix.to_rows(), dtype=np.uint32).reshape(len(sh), settings.num_perm), sh.counts()


def band_hashes(signature: np.ndarray, settings: MinHashSettings) -> np.ndarray:
    """``uint64[documents, bands]``: each band's ``rows`` values folded into one 64-bit hash."""
    sig = signature.reshape(len(signature), settings.bands, settings.rows).astype(np.uint64)
    h = np.zeros(sig.shape[:2], dtype=np.uint64)
    with np.errstate(over="ignore"):
        for r in range(settings.rows):
            h = (h ^ sig[:, :, r]) * _M1
            h ^= h >> np.uint64(31)
        h = (h ^ (h >> np.uint64(29))) * _M2
        h ^= h >> np.uint64(32)
        # the band index goes in too: equal rows in different bands are not a match
        h ^= np.arange(settings.bands, dtype=np.uint64)[None, :] * _M1
    return h


def document_bands(text: pa.Array | pa.ChunkedArray, settings: MinHashSettings) -> tuple[pa.Array, pa.Array]:
    """Arrow columns for a batch: ``bands`` (``list<uint64>``, null for a document without words) and
    ``n_shingles`` (int32)."""
    sig, counts = signatures(text, settings)
    bands = band_hashes(sig, settings)
    empty = counts == 0
    values = pa.array(bands.reshape(-1), pa.uint64())
    offsets = pa.array(np.arange(0, bands.size + 1, settings.bands, dtype=np.int32))
    lists = pa.ListArray.from_arrays(offsets, values, mask=pa.array(empty) if empty.any() else None)
    return lists, pa.array(counts.astype(np.int32), pa.int32())
