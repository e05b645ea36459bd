"""``ingest``: ``curate.ingest`` of a JSONL file vs ``pyarrow.json.read_json`` of the same file.

curate parses, validates, dedups by content id, quarantines and writes zstd Parquet
shards atomically; pyarrow only parses into memory. Both use their default threading on
this machine. MB = uncompressed JSONL bytes; best of 2 timed runs after one warm-up.
Goals: ratio (curate MB/s ÷ pyarrow MB/s) ≥ 0.5 and ≥ 50 MB/s absolute.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from benchmarks._common import (
    CACHE,
    CORES,
    best_of,
    corpus_table,
    fresh_dir,
    log,
    rel,
    row,
    text_mb,
    warm_page_cache,
    write_jsonl,
    zstd_copy,
)

GOAL_RATIO = 0.5
GOAL_MB_S = 50.0


def _measure(path: Path, mb: float, docs: int, repeats: int) -> dict[str, Any]:
    import pyarrow.json as pj

    import curate
    from curate.embedded import CORPUS_FIELDS

    warm_page_cache([path])
    scratch = fresh_dir("ingest")
    import time

    def ours(i: int) -> tuple[float, Any]:
        store = scratch / f"store-{i}"
        t0 = time.perf_counter()
        summary = curate.ingest([path], store, "bench", fields=CORPUS_FIELDS, progress=False)
        dt = time.perf_counter() - t0
        shutil.rmtree(store, ignore_errors=True)
        return dt, summary

    ours(0)  # warm-up
    t_ours, summary = min((ours(i + 1) for i in range(repeats)), key=lambda x: x[0])
    if summary.kept != docs:
        raise RuntimeError(f"curate.ingest kept {summary.kept} of {docs} docs ({summary.reasons})")
    t_pa, table = best_of(lambda: pj.read_json(path), repeats)
    if table.num_rows != docs:
        raise RuntimeError(f"pyarrow read {table.num_rows} of {docs} rows")
    t_pa1, _ = best_of(lambda: pj.read_json(path, read_options=pj.ReadOptions(use_threads=False)), 1)
    shutil.rmtree(scratch, ignore_errors=True)
    return {
        "ours_s": round(t_ours, 3),
        "ours_internal_s": summary.seconds,
        "pyarrow_s": round(t_pa, 3),
        "pyarrow_1thread_s": round(t_pa1, 3),
        "ours_mb_s": mb / t_ours,
        "pyarrow_mb_s": mb / t_pa,
        "pyarrow_1thread_mb_s": round(mb / t_pa1, 2),
    }


def run(quick: bool) -> list[dict[str, Any]]:
    table = corpus_table(quick)
    docs = table.num_rows
    tag = "quick" if quick else "full"
    plain = write_jsonl(table, CACHE / f"corpus-{tag}.jsonl")
    zst = zstd_copy(plain, CACHE / f"corpus-{tag}.jsonl.zst")
    mb = os.path.getsize(plain) / 1e6
    repeats = 2
    rows = []
    for label, path in (("jsonl", plain), ("jsonl.zst", zst)):
        log(f"ingest: {label} {mb:.1f} MB, {docs} docs")
        m = _measure(path, mb, docs, repeats)
        m.update({"file": rel(path), "file_mb": round(os.path.getsize(path) / 1e6, 2), "text_mb": round(text_mb(table), 2)})
        rows.append(row(
            f"ingest {label}", "curate.ingest vs pyarrow.json.read_json",
            docs=docs, mb=mb, cores=CORES, ours=m["ours_mb_s"], baseline=m["pyarrow_mb_s"], unit="MB/s",
            goal=GOAL_RATIO, extra_goal=("MB/s", m["ours_mb_s"], GOAL_MB_S),
            note=f"MB = uncompressed JSONL; best of {repeats} after a warm-up; pyarrow multi-threaded "
                 f"(1 thread: {m['pyarrow_1thread_mb_s']} MB/s)",
            details=m))
    return rows
