"""``export``: writing a built mixture as Megatron ``.bin/.idx`` and flat token files vs the write limit.

ours: ``curate.mixture.export.export_mixture`` of a bytes mixture of the whole embedded corpus
(~60 M tokens, two phases): reads the parts, inserts EOS, writes per phase, streams the index,
hashes every file as it writes, syncs each to disk before renaming it. baseline: the same token
ids, already in memory as one array, written with ``numpy.ndarray.tofile`` in one go and synced —
the most a writer can do on this disk. Best of 3 each, after a warm-up, each into an empty folder (the
earlier export's files are deleted untimed, as the baseline deletes its file after each run). Tokens/s
are compared.
Goal: ≥ 0.5× of the limit.
"""

from __future__ import annotations

import os
import shutil
import time
from typing import Any

import numpy as np

from benchmarks._common import TMP, build_store, corpus_table, log, row, shard_rows_for

GOAL = 0.5


def run(quick: bool) -> list[dict[str, Any]]:
    from curate.mixture import build_mixture, load_spec
    from curate.mixture.export import export_mixture
    from curate.mixture.loader import MixtureDataset

    table = corpus_table(quick)
    store, info = build_store(f"export-{'quick' if quick else 'full'}", table, shard_rows_for(table.num_rows, 4))
    tokens = int(info["mb"] * 1e6 * 0.75)  # three quarters of the text: no domain runs short at 4 epochs
    spec = load_spec({"name": "bench-export", "tokens": tokens, "seed": 0, "max_epochs": 4, "where": ["corpus = 'bench'"],
                      "weights": {"web": 0.2, "code": 0.15, "math": 0.1, "encyclopedic": 0.15, "books": 0.15,
                                  "forum": 0.1, "docs": 0.1, "multilingual": 0.05},
                      "phases": [{"name": "main", "fraction": 0.85},
                                 {"name": "anneal", "fraction": 0.15, "weights": {"math": 0.5, "code": 0.5}}]})
    log(f"export: building a {tokens:,}-token mixture")
    build_mixture(store, spec, report=False, reuse=True)
    results = {}
    for fmt in ("megatron", "tokens"):
        out = TMP / f"export-{fmt}"
        export_mixture(store, "bench-export", fmt, out, overwrite=True)  # warm-up: parts in the page cache
        best = float("inf")
        for _ in range(3):
            shutil.rmtree(out)  # into an empty folder, as tofile writes a new file: deleting is not timed
            t0 = time.perf_counter()
            rec = export_mixture(store, "bench-export", fmt, out)
            best = min(best, time.perf_counter() - t0)
        results[fmt] = {"seconds": best, "tokens": rec["tokens"], "documents": rec["documents"]}
        shutil.rmtree(out, ignore_errors=True)
    ds = MixtureDataset(store, "bench-export", seq_len=256)
    ids = np.concatenate([ds._part_tokens_array(i) for i in range(len(ds.manifest.parts))]).astype(np.uint16)
    target = TMP / "export-tofile.bin"
    limit_s = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        with open(target, "wb") as f:
            ids.tofile(f)
            f.flush()
            os.fsync(f.fileno())
        limit_s = min(limit_s, time.perf_counter() - t0)
        target.unlink()
    rows = []
    for fmt, r in results.items():
        rows.append(row(f"export {fmt}", f"export_mixture({fmt}) vs ndarray.tofile of the same ids",
                        docs=r["documents"], mb=None, cores=1, ours=r["tokens"] / r["seconds"] / 1e6,
                        baseline=len(ids) / limit_s / 1e6, unit="Mtok/s", goal=GOAL,
                        note=f"{r['tokens']:,} tokens in {r['seconds']:.2f} s (hashed, synced); tofile + fsync "
                             f"{limit_s:.2f} s", details={**r, "tofile_s": limit_s, "store": info}))
    return rows
