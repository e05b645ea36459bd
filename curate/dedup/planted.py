"""Planted near-copies at controlled similarity: how to measure what a near-duplicate setting finds.

Each original document gets one copy edited until the Jaccard similarity of the two documents'
word-shingle sets is as close as the edits allow to a target ``s``: random words substituted,
inserted or deleted at random places (a third each), applied one by one from a fixed random sequence
so more edits means lower similarity, and the number of edits chosen by bisection. The measured
similarity of every pair is kept, so a detection table reads against what was planted, not what was
asked for.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from curate.dedup.shingles import jaccard, shingle_hashes


@dataclass(frozen=True)
class PlantedPair:
    original: int  # index into the originals
    target: float  # the similarity asked for
    similarity: float  # the shingle Jaccard measured
    text: str  # the copy


def shingle_set(text: str, n: int = 5) -> np.ndarray:
    """Distinct shingle hashes of one text."""
    return shingle_hashes(pa.array([text]), n).of(0)


def edited_copy(text: str, edits: list[tuple[str, float, str]], k: int) -> str:
    """``text`` after the first ``k`` of ``edits`` (kind, relative position, word)."""
    words = text.split()
    for kind, where, word in edits[:k]:
        i = min(int(where * len(words)), max(len(words) - 1, 0))
        if kind == "sub" and words:
            words[i] = word
        elif kind == "ins":
            words.insert(i, word)
        elif kind == "del" and len(words) > 1:
            del words[i]
    return " ".join(words)


def plant(texts: list[str], targets: list[float], *, per_target: int, seed: int = 0,
          ngram: int = 5) -> list[PlantedPair]:
    """``per_target`` copies at each similarity in ``targets``, each of a different original.

    ``texts`` must hold at least ``per_target * len(targets)`` documents (long ones plant more
    precisely: an edit changes at most ``ngram`` of a document's shingles).
    """
    need = per_target * len(targets)
    if len(texts) < need:
        raise ValueError(f"planting {per_target} copies at {len(targets)} similarities needs {need} texts, "
                         f"got {len(texts)}")
    rng = random.Random(seed)
    vocab = [w for t in texts[: min(len(texts), 200)] for w in t.split()[:200]] or ["x"]
    out = []
    for j, s in enumerate(targets):
        for i in range(j * per_target, (j + 1) * per_target):
            words = texts[i].split()
            edits = [(rng.choice(("sub", "ins", "del")), rng.random(), f"{rng.choice(vocab)}{rng.randrange(10**6)}")
                     for _ in range(2 * len(words) + 10)]
            base = shingle_set(texts[i], ngram)
            lo, hi = 0, len(edits)  # similarity falls as k grows: bisect for the k closest to s
            while lo < hi:
                mid = (lo + hi) // 2
                if jaccard(base, shingle_set(edited_copy(texts[i], edits, mid), ngram)) > s:
                    lo = mid + 1
                else:
                    hi = mid
            best = min({max(lo - 1, 0), lo}, key=lambda k: abs(
                jaccard(base, shingle_set(edited_copy(texts[i], edits, k), ngram)) - s))
            copy = edited_copy(texts[i], edits, best)
            out.append(PlantedPair(i, s, jaccard(base, shingle_set(copy, ngram)), copy))
    return out
