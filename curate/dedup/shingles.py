"""Word n-gram shingles of a batch of documents, hashed to 64 bits, without a Python loop per word.

Normalisation (what makes two copies "the same text"): Unicode NFKC, lowercase, and every run of
punctuation, symbols and whitespace collapsed to one space; then words are split on spaces. A
document's shingles are its word ``n``-grams; a document of fewer than ``n`` words has one shingle
(all its words), an empty one none.

The work is columnar: pyarrow normalises and splits the whole batch, each *distinct* word is hashed
once (xxh3-64), and the n-gram hashes are mixed from consecutive word hashes with numpy. What comes
back is one flat ``uint64`` array of shingle hashes and the row offsets into it, the layout rensa's
MinHash and DuckDB's joins take.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

#: runs of punctuation (P), symbols (S) and whitespace become one space (RE2 syntax, as pyarrow uses)
SEPARATORS = r"[\p{P}\p{S}\s]+"
_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant: order matters, so "a b" != "b a"


@dataclass(frozen=True)
class Shingles:
    """Shingle hashes of a batch: document ``i`` owns ``hashes[offsets[i]:offsets[i + 1]]`` (not deduplicated)."""

    hashes: np.ndarray  # uint64
    offsets: np.ndarray  # int64, len = documents + 1

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    def of(self, i: int) -> np.ndarray:
        """Distinct shingle hashes of document ``i``."""
        return np.unique(self.hashes[self.offsets[i]:self.offsets[i + 1]])


def normalise(text: pa.Array | pa.ChunkedArray) -> pa.Array:
    """NFKC, lowercase, punctuation/symbol/whitespace runs to one space (nulls become empty text)."""
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    if text.null_count:
        text = pc.fill_null(text, "")
    text = pc.utf8_lower(pc.utf8_normalize(text, "NFKC"))
    return pc.replace_substring_regex(text, SEPARATORS, " ")


def word_hashes(text: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(64-bit hash of every word, row offsets) of normalised ``text``; each distinct word is hashed once."""
    words = pc.utf8_split_whitespace(normalise(text))
    flat = pc.list_flatten(words)
    parents = pc.list_parent_indices(words).to_numpy()
    nonempty = (pc.utf8_length(flat).to_numpy(zero_copy_only=False) > 0)  # text of only separators splits to ""
    flat = flat.filter(pa.array(nonempty))
    counts = np.bincount(parents[nonempty], minlength=len(words))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    if len(flat) == 0:
        return np.empty(0, np.uint64), offsets
    enc = pc.dictionary_encode(flat)
    vocab = enc.dictionary.to_pylist()
    per_word = np.fromiter((xxhash.xxh3_64_intdigest(w.encode()) for w in vocab), dtype=np.uint64,
                           count=len(vocab))
    return per_word[enc.indices.to_numpy()], offsets


def shingle_hashes(text: pa.Array | pa.ChunkedArray, n: int = 5) -> Shingles:
    """Hashes of every document's word ``n``-grams (see the module docstring for short documents)."""
    if n < 1:
        raise ValueError(f"shingle size must be at least 1, got {n}")
    words, offsets = word_hashes(text)
    counts = np.diff(offsets)
    # n-gram k starts at word k; grams that would run into the next document are dropped below
    grams = _mix(words, n)
    per_doc = np.where(counts >= n, counts - n + 1, np.minimum(counts, 1))
    out_offsets = np.concatenate([[0], np.cumsum(per_doc)]).astype(np.int64)
    starts = np.repeat(offsets[:-1], per_doc) + (np.arange(out_offsets[-1]) - np.repeat(out_offsets[:-1], per_doc))
    long_doc = np.repeat(counts >= n, per_doc)
    hashes = np.empty(len(starts), np.uint64)
    hashes[long_doc] = grams[starts[long_doc]] if len(grams) else np.empty(0, np.uint64)
    short = np.flatnonzero(~long_doc)
    if len(short):  # documents of 1..n-1 words: one shingle of all their words
        doc_of = np.repeat(np.arange(len(counts)), per_doc)[short]
        hashes[short] = [_mix(words[offsets[d]:offsets[d + 1]], int(counts[d]))[0] for d in doc_of]
    return Shingles(hashes, out_offsets)


def _mix(words: np.ndarray, n: int) -> np.ndarray:
    """Hash of each window of ``n`` consecutive word hashes (len(words) - n + 1 of them)."""
    m = len(words) - n + 1
    if m <= 0:
        return np.empty(0, np.uint64)
    g = np.zeros(m, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            g = (g * _MIX) ^ words[k:k + m]
    return g


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sets of shingle hashes (distinct arrays); 0 when both are empty."""
    if len(a) == 0 and len(b) == 0:
        return 0.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)
