"""Mixture planning speed: plan a two-phase mixture over N generated documents (DuckDB only, no text).

The docs table is generated straight into store shards as Parquet by DuckDB (not through
ingest): doc ids are md5 hex, 8 domains, n_bytes 100..3099, empty text (planning never reads it).
Goal: 10M documents planned in under 5 s on this machine. ``python -m benchmarks.mixture_plan``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import duckdb

from benchmarks._common import CACHE, log, row

DOMAINS = ["web", "code", "math", "books", "forum", "docs", "encyclopedic", "multilingual"]
GOAL_S = 5.0


def make_store(n: int) -> Path:
    """A store with ``n`` generated documents (cached between runs)."""
    from curate.store import Store

    root = CACHE / f"mixture-plan-{n}"
    shards = root / "shards" / "gen"
    if not (root / "store.json").exists() or not list(shards.glob("*.parquet")):
        shards.mkdir(parents=True, exist_ok=True)
        Store.open(root, create=True)
        import pyarrow.parquet as pq

        from curate.ingestion.schema import QUARANTINE_SCHEMA

        (root / "quarantine" / "gen").mkdir(parents=True, exist_ok=True)  # the views expect one
        pq.write_table(QUARANTINE_SCHEMA.empty_table(), root / "quarantine" / "gen" / "part-00000.parquet")
        con = duckdb.connect()
        per = 1_000_000
        for i, start in enumerate(range(0, n, per)):
            con.execute(f"""
                COPY (SELECT md5(i::VARCHAR) AS doc_id, 'gen' AS corpus, i::VARCHAR AS orig_id, ''::VARCHAR AS text,
                             {DOMAINS}[(i % 8) + 1] AS domain, NULL::VARCHAR AS source, NULL::VARCHAR AS url,
                             (100 + hash(i) % 3000)::BIGINT AS n_bytes, NULL::VARCHAR AS meta
                      FROM range({start}, {min(start + per, n)}) t(i))
                TO '{shards}/part-{i:05d}.parquet' (FORMAT parquet, COMPRESSION zstd)
            """)
    return root


def spec_for(n: int) -> dict[str, Any]:
    # ~1.6 KB mean per doc: a budget of 1.5x the supply forces whole passes and a partial one
    return {
        "name": "bench", "tokens": int(n * 1600 * 1.5), "max_epochs": 4, "seed": 0,
        "weights": {d: 1 / 8 for d in DOMAINS},
        "phases": [{"name": "main", "fraction": 0.85},
                   {"name": "anneal", "fraction": 0.15, "weights": {"math": 0.4, "code": 0.4, "encyclopedic": 0.2}}],
    }


def run(quick: bool) -> list[dict[str, Any]]:
    from curate.mixture import load_spec, plan_mixture
    from curate.store import Store

    n = 1_000_000 if quick else 10_000_000
    log(f"mixture plan: generating {n:,} docs")
    store = Store.open(make_store(n))
    spec = load_spec(spec_for(n))
    t0 = time.perf_counter()
    plan = plan_mixture(store, spec)
    secs = time.perf_counter() - t0
    uses = plan.con.execute("SELECT count(*) FROM plan_occ").fetchone()[0]
    log(f"mixture plan: {n:,} docs -> {uses:,} uses, {plan.tokens:,} tokens in {secs:.2f}s")
    return [row("mixture-plan", f"plan {n / 1e6:g}M docs vs {GOAL_S:g} s goal", docs=n, mb=None, cores=None,
                ours=round(secs, 3), baseline=GOAL_S, unit="s", goal=1.0, goal_op="<=",
                note=f"{uses:,} document uses, {plan.tokens / 1e9:.1f}B tokens planned, 2 phases, max_epochs 4",
                details={"uses": uses, "tokens": plan.tokens, "seconds": secs})]


if __name__ == "__main__":
    for r in run(quick=False):
        print(r)
