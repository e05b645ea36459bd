"""Connected components of an undirected graph given as edge arrays, in numpy (linear passes over the edges).

Union by hooking each edge's larger root under its smaller one, then pointer jumping until every
node points at its root; repeated until no edge joins two roots. Each round is a few vectorised
passes over the edges, and the number of rounds grows with the logarithm of the longest chain, so a
graph of millions of candidate edges clusters in seconds without a Python loop per edge.
"""

from __future__ import annotations

import numpy as np


def components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Label of every node ``0..n-1``: the smallest node of its component."""
    parent = np.arange(n, dtype=np.int64)
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if len(a) != len(b):
        raise ValueError("edge arrays differ in length")
    while True:
        ra, rb = parent[a], parent[b]
        split = ra != rb
        if not split.any():
            return parent
        lo, hi = np.minimum(ra[split], rb[split]), np.maximum(ra[split], rb[split])
        np.minimum.at(parent, hi, lo)  # hook: a root moves under the smallest root it touches
        while True:  # compress: every node straight to its root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
