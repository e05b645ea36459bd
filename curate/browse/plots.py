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


def histogram_counts(con: duckdb.DuckDBPyConnection, store: Store, column: str, bins: int = BINS,
                     selected: str | None = None) -> dict[str, Any] | None:
    """Shared bin edges and per-domain counts of ``column`` (finite values only) over the pool, and over the
    documents of ``selected`` (a query returning ``doc_id``, e.g. a mixture's plan) when given; None when the
    column has no finite value."""
    col = '"' + column.replace('"', '""') + '"'
    picked = f"doc_id IN ({selected})" if selected else "false"
    values = (f"SELECT coalesce(domain, '(none)') AS domain, {col}::DOUBLE AS v, {picked} AS picked "
              f"FROM {narrow_doc_features(con, store, column)} WHERE isfinite({col}::DOUBLE)")
    lo, hi = con.sql(f"SELECT min(v), max(v) FROM ({values})").fetchall()[0]
    if lo is None:
        return None
    width = (hi - lo) / bins or 1.0
    counts: dict[str, list[int]] = {}
    chosen: dict[str, list[int]] = {}
    rows = con.sql(f"SELECT domain, least(floor((v - $lo) / $w)::INTEGER, {bins - 1}) AS b, count(*), "
                   f"count(*) FILTER (WHERE picked) FROM ({values}) GROUP BY ALL",
                   params={"lo": lo, "w": width}).fetchall()
    for domain, b, n, k in rows:
        counts.setdefault(domain, [0] * bins)[int(b)] = int(n)
        chosen.setdefault(domain, [0] * bins)[int(b)] = int(k)
    out: dict[str, Any] = {"edges": [lo + i * width for i in range(bins + 1)], "counts": dict(sorted(counts.items()))}
    if selected:
        out["selected"] = dict(sorted(chosen.items()))
    return out


def histogram_png(con: duckdb.DuckDBPyConnection, store: Store, column: str, selected: str | None = None,
                  label: str = "selected") -> bytes | None:
    """One small panel per domain (share of that domain's documents per bin, shared x axis; the ``selected``
    documents drawn over the pool when given) as PNG bytes."""
    data = histogram_counts(con, store, column, selected=selected)
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
            ax.stairs(counts / max(counts.sum(), 1), edges, fill=True, alpha=0.5 if selected else 0.7,
                      color="tab:gray" if selected else "tab:blue", label=f"pool ({int(counts.sum()):,})")
            title = f"{domain} ({int(counts.sum()):,})"
            if selected:
                kept = np.asarray(data["selected"][domain], dtype=float)
                ax.stairs(kept / max(kept.sum(), 1), edges, color="tab:blue", label=f"{label} ({int(kept.sum()):,})")
                ax.legend(fontsize=6)
                title = domain
            ax.set_title(title, fontsize=9)
            ax.tick_params(labelsize=7)
        for ax in list(axes.flat)[len(domains):]:
            ax.set_visible(False)
        fig.suptitle(f"{column}: share of each domain's documents per bin"
                     + (f", {label} vs pool" if selected else ""))
        return png_bytes(fig)
