"""Evaluation-set decontamination: which pool documents share long word n-grams with a target set.

A target (a corpus such as ``heldout``, or any SQL returning ``doc_id, text`` — a benchmark's
questions and answers ingested as a corpus) becomes one sorted array of the hashes of its word
``n``-grams (13 by default, as GPT-3's contamination study), each with the target document it first
came from. The array is built once per target and travels inside the scorer to every worker; its
content hash is the scorer's model hash, so a changed target re-scores and an unchanged one does not.

Per pool document: how many of its distinct n-grams occur in the target, that count as a share of
its n-grams, the target document it shares most with, how much of *that* document it holds
(coverage), and ``contaminated``: it holds at least ``min_coverage`` of a target document's n-grams
(default 0.5: half a benchmark item, or a pasted paragraph that is most of one), or at least
``min_fraction`` of its own n-grams come from the target (default 0.5: a near-copy). Counting
shared n-grams alone flags boilerplate: on the embedded corpus, a Go licence header or a man page's
footer shares a dozen 13-grams with thousands of documents (6,650 of 25,183 pool documents had 5 or
more shared 13-grams with ``heldout``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from curate.dedup.shingles import shingle_hashes
from curate.errors import ConfigError
from curate.store import Store


@dataclass(frozen=True)
class TargetGrams:
    """A target's distinct n-gram hashes (sorted) and, per hash, the index of a target document holding it."""

    name: str
    n: int
    grams: np.ndarray  # uint64, sorted, unique
    owner: np.ndarray  # int32, index into doc_ids (a gram in several target documents: the first)
    doc_ids: list[str]
    sizes: np.ndarray  # int64, distinct n-grams per target document

    def content_hash(self) -> str:
        h = hashlib.sha256(f"{self.n}:{len(self.doc_ids)}".encode())
        h.update(self.grams.tobytes())
        return h.hexdigest()[:16]


def target_sql(target: str) -> str:
    """SQL for a target named by corpus or given as SQL (anything starting with SELECT or WITH)."""
    if target.strip().split(None, 1)[0].upper() in ("SELECT", "WITH"):
        return target
    return f"SELECT doc_id, text FROM docs WHERE corpus = '{target.replace(chr(39), chr(39) * 2)}'"


def build_target(store: Store | str, target: str, n: int = 13) -> TargetGrams:
    """The n-gram set of ``target``; an empty or unknown target is refused, naming it."""
    from curate.query import connect

    if n < 1:
        raise ConfigError(f"decontam n must be at least 1, got {n}")
    st = Store.of(store)
    if target_sql(target) != target and target not in st.corpora():
        raise ConfigError(f"decontam target {target!r} is not a corpus of {st.uri} (corpora: "
                          f"{', '.join(st.corpora()) or 'none'}); ingest it first or pass SQL returning doc_id, text")
    con = connect(st)
    try:
        table = con.sql(f"SELECT doc_id, text FROM ({target_sql(target)}) AS t ORDER BY doc_id").to_arrow_table()
    except Exception as exc:  # noqa: BLE001 - DuckDB's binder/parser errors: name the setting
        raise ConfigError(f"decontam target SQL does not run: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
    if table.num_rows == 0:
        raise ConfigError(f"decontam target {target!r} has no documents: nothing to check against")
    sh = shingle_hashes(table.column("text"), n)
    owner = np.repeat(np.arange(len(sh), dtype=np.int32), sh.counts())
    grams, first = np.unique(sh.hashes, return_index=True)
    sizes = np.array([len(sh.of(i)) for i in range(len(sh))], dtype=np.int64)
    return TargetGrams(target, n, grams, owner[first], table.column("doc_id").to_pylist(), sizes)


@dataclass
class Overlap:
    """Per pool document of a batch: shared n-grams, their share of its n-grams, the target document it
    shares most with (None: nothing shared) and the share of that document's n-grams it holds."""

    ngrams: np.ndarray  # int32
    fraction: np.ndarray  # float32
    doc_id: list[str | None]
    coverage: np.ndarray  # float32


def overlap(text: pa.Array | pa.ChunkedArray, target: TargetGrams) -> Overlap:
    """How each document of ``text`` overlaps ``target`` (see :class:`Overlap`)."""
    sh = shingle_hashes(text, target.n)
    out = Overlap(np.zeros(len(sh), np.int32), np.zeros(len(sh), np.float32), [None] * len(sh),
                  np.zeros(len(sh), np.float32))
    if len(target.grams) == 0 or len(sh.hashes) == 0:
        return out
    at = np.searchsorted(target.grams, sh.hashes).clip(max=len(target.grams) - 1)
    hit = target.grams[at] == sh.hashes
    doc_of = np.repeat(np.arange(len(sh)), sh.counts())
    for i in np.flatnonzero(np.bincount(doc_of[hit], minlength=len(sh))):
        lo, hi = sh.offsets[i], sh.offsets[i + 1]
        shared, first = np.unique(sh.hashes[lo:hi][hit[lo:hi]], return_index=True)
        per_target = np.bincount(target.owner[at[lo:hi][hit[lo:hi]][first]])
        best = int(per_target.argmax())
        out.ngrams[i] = len(shared)
        out.fraction[i] = len(shared) / len(np.unique(sh.hashes[lo:hi]))
        out.doc_id[i] = target.doc_ids[best]
        out.coverage[i] = per_target[best] / max(int(target.sizes[best]), 1)
    return out
