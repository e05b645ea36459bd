"""Per-domain histograms of one score for ``curate browse``, counted by DuckDB and drawn by matplotlib.

The counts are aggregated in SQL over only the feature table holding the score, so a histogram of 10 M
documents moves a few hundred numbers into Python, never the scores themselves.
"""

from __future__ import annotations

import threading
from typing import Any

import duckdb

from curate.query import narrow_doc_features
from curate.render import png_bytes
from curate.store import Store

BINS = 40
# matplotlib's figure manager is global state: one figure is drawn at a time across the server's threads
_DRAWING = threading.Lock()


def histogram_counts(con: duckdb.DuckDBPyConnection, store: Store, column: str,
                     bins: int = BINS) -> dict[str, Any] | None:
    """Shared bin edges and per-domain counts of ``column`` (finite values only); None when it has none."""
    col = '"' + column.replace('"', '""') + '"'
    values = (f"SELECT coalesce(domain, '(none)') AS domain, {col}::DOUBLE AS v "
              f"FROM {narrow_doc_features(con, store, column)} WHERE isfinite({col}::DOUBLE)")
    lo, hi = con.sql(f"SELECT min(v), max(v) FROM ({values})").fetchall()[0]
    if lo is None:
        return None
    width = (hi - lo) / bins or 1.0
    counts: dict[str, list[int]] = {}
    rows = con.sql(f"SELECT domain, least(floor((v - $lo) / $w)::INTEGER, {bins - 1}) AS b, count(*) "
                   f"FROM ({values}) GROUP BY ALL", params={"lo": lo, "w": width}).fetchall()
    for domain, b, n in rows:
        counts.setdefault(domain, [0] * bins)[int(b)] = int(n)
    return {"edges": [lo + i * width for i in range(bins + 1)], "counts": dict(sorted(counts.items()))}


def histogram_png(con: duckdb.DuckDBPyConnection, store: Store, column: str) -> bytes | None:
    """One small panel per domain (share of that domain's documents per bin, shared x axis) as PNG bytes."""
    data = histogram_counts(con, store, column)
    if data is None:
        return None
    import numpy as np

    with _DRAWING:
        import matplotlib

        matplotlib.use("Agg")  # a server has no display
        import matplotlib.pyplot as plt

        domains = list(data["counts"])
        cols = min(4, len(domains))
        rows = -(-len(domains) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), sharex=True, squeeze=False)
        edges = np.asarray(data["edges"])
        for ax, domain in zip(axes.flat, domains):
            counts = np.asarray(data["counts"][domain], dtype=float)
            ax.stairs(counts / max(counts.sum(), 1), edges, fill=True, alpha=0.7)
            ax.set_title(f"{domain} ({int(counts.sum()):,})", fontsize=9)
            ax.tick_params(labelsize=7)
        for ax in list(axes.flat)[len(domains):]:
            ax.set_visible(False)
        fig.suptitle(f"{column}: share of each domain's documents per bin")
        return png_bytes(fig)
