"""``rss``: peak memory while scoring a 1× corpus vs a 10× corpus.

The 10× corpus is the same documents repeated with new ids, ingested into its own store with the
same shard size, so a streaming engine's peak should not grow with corpus size. Peak RSS is sampled
every 50 ms from /proc over the driver plus its Ray worker processes (the whole process tree,
raylet and GCS included, is in the details). Scorer: heuristics, 2 workers. Goal: peak(10×) ÷ peak(1×) ≤ 1.2.
"""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from benchmarks._common import (
    CORES,
    RssSampler,
    build_store,
    corpus_table,
    log,
    ray_session,
    repeated,
    row,
    run_engine,
    warm_page_cache,
)

GOAL = 1.2
TIMES = 10


def _build_stores(quick: bool, shard_rows: int) -> dict[int, tuple[Any, dict[str, Any]]]:
    base = corpus_table(quick, max_mb=4.0) if quick else corpus_table(False)
    tag = "quick" if quick else "full"
    stores = {}
    for times in (1, TIMES):
        log(f"rss: building the {times}× store")
        stores[times] = build_store(f"rss-{tag}-{times}x", repeated(base, times), shard_rows)
    return stores


def run(quick: bool) -> list[dict[str, Any]]:
    from scorers.heuristics import HeuristicsScorer

    shard_rows = 500 if quick else 2100
    # stores are built in a child process, so the corpus tables never inflate the driver's RSS
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=ctx) as pool:
        stores = pool.submit(_build_stores, quick, shard_rows).result()
    out: dict[int, dict[str, Any]] = {}
    with ray_session():
        run_engine(stores[1][0], HeuristicsScorer(), CORES, corpora=("warmup",))  # warm-up: imports, worker pool
        for times in (1, TIMES):
            store, info = stores[times]
            warm_page_cache([store / "shards"])
            log(f"rss: scoring the {times}× store ({info['mb']} MB)")
            with RssSampler() as s:
                wall, report = run_engine(store, HeuristicsScorer(), CORES)
            out[times] = {"peak_mb": s.peak_workers / 1e6, "peak_tree_mb": round(s.peak_tree / 1e6, 1),
                          "peak_driver_mb": round(s.peak_driver / 1e6, 1), "wall_s": round(wall, 2),
                          "max_worker_processes": s.max_workers, "peak_one_worker_mb": round(s.peak_one_worker / 1e6, 1),
                          "rows": report.rows, "store": info}
    one, many = out[1], out[TIMES]
    return [row("rss", f"peak RSS scoring {TIMES}× corpus vs 1× (driver + Ray workers)",
                docs=many["store"]["docs"], mb=many["store"]["mb"], cores=CORES, ours=many["peak_mb"],
                baseline=one["peak_mb"], unit="MB", goal=GOAL, goal_op="<=",
                note=f"1×: {one['store']['docs']} docs/{one['store']['mb']} MB; shards of {shard_rows} docs; "
                     f"whole tree {one['peak_tree_mb']:.0f} → {many['peak_tree_mb']:.0f} MB",
                details={"1x": one, f"{TIMES}x": many})]
