"""MATES as the paper runs it: staged and model-aware, inside the training run.

Stage 0 trains on a random draw (the same documents, in the same order, as the
first random run: both start from the same seed, so they are the same model at
the first boundary). At each later boundary the data source hands the *live*
model and its optimizer to :meth:`curate.mates.MatesSelector.select`, which probes
a private copy (one AdamW step per probe document, reference loss after it),
fits the ridge influence model on MiniLM embeddings, predicts a fresh slice of the
pool and keeps 20% by Gumbel-top-k; the stage then trains on a draw of its share
of the budget from those documents (never one an earlier stage trained on).

Each stage's pool is a hashed slice of the pool sized so that its kept 20% holds
at least 1.5x the stage's tokens and 25 documents: MiniLM reads only what a stage needs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from curate.errors import ConfigError, CurateError
from curate.experiment.methods import METHODS, draw, pool_where, token_shares
from curate.experiment.scales import Scale
from curate.experiment.training import REFERENCE_SQL, Stream, texts_in_order
from curate.lm.train import Batches
from curate.store import Store

KEEP, TAU, PROBE_PERCENT, MARGIN, MIN_KEPT = 0.2, 0.5, 10, 1.5, 25


def stage_tokens(total: int, stages: int, window_tokens: int, step_tokens: int) -> list[int]:
    """Each stage's share of ``total`` in whole mixing windows (whole steps when the budget is too small for
    that), the last stage taking the remainder: stage 0 then streams exactly what the random run with the
    same seed streams first."""
    unit = window_tokens if total // window_tokens >= stages else step_tokens
    if total // unit < stages:
        raise ConfigError(f"MATES: {total:,} tokens are fewer than one training step per stage ({stages} stages)")
    per = [total // unit // stages * unit] * stages
    per[-1] = total - sum(per[:-1])
    return per


def pool_splits(con: duckdb.DuckDBPyConnection, pool: str, per_stage: int, stages: int) -> int:
    """How many hashed slices to cut the pool into so one slice's kept share covers a stage ``MARGIN`` times
    and holds at least ``MIN_KEPT`` documents (document sizes are heavy-tailed: a mean can mislead)."""
    docs, supply = con.sql(f"SELECT count(*), sum(n_bytes + 1) FROM docs WHERE {pool_where(pool)}").fetchall()[0]
    share = (1 - PROBE_PERCENT / 100) * KEEP
    by_tokens = int((supply or 0) * share // (MARGIN * max(1, per_stage)))
    by_docs = int(docs * share // MIN_KEPT)
    return max(1, min(by_tokens, by_docs, 1000), stages - 1)


def mates_batches(st: Store, con: duckdb.DuckDBPyConnection, scale: Scale, *, pool: str, tokens: int, seed: int,
                  run: str, log: Callable[[str], None]) -> tuple[Batches, list[dict[str, Any]]]:
    """A ``train_lm`` data source running MATES stages; the list fills with one record per stage."""
    from curate.mates import MatesSelector

    budgets = stage_tokens(tokens, scale.mates_stages, scale.step_tokens * scale.mix_batches, scale.step_tokens)
    splits = pool_splits(con, pool, budgets[-1], scale.mates_stages)
    selector = MatesSelector(
        st, run=run, pool_sql=f"SELECT doc_id, text, domain FROM docs WHERE {pool_where(pool)}",
        reference_sql=REFERENCE_SQL, probes=scale.mates_probes, probe_percent=PROBE_PERCENT, pool_splits=splits,
        reference_docs=scale.mates_reference_docs, keep=KEEP, tau=TAU, seed=seed, influence="ridge",
        influence_options={"chunk_tokens": scale.mates_chunk_tokens, "max_chunks": 1}, workers=0, score_workers=0,
        threads=scale.threads, progress=False)
    stages: list[dict[str, Any]] = []

    def batches(model: Any, optimizer: Any) -> Iterator[np.ndarray]:
        stream = Stream(scale, seed)
        used: pa.Table | None = None
        for k, budget in enumerate(budgets):
            t0 = time.perf_counter()
            if k == 0:
                keep_sql = METHODS["random"].sql(pool_where(pool))
                info: dict[str, Any] = {"selection": "random"}
            else:
                log(f"  mates stage {k}: selecting with the live model ({scale.mates_probes} probes, pool slice "
                    f"{k % splits} of {splits})")
                result = selector.select(model, stage=k, optimizer=optimizer)
                con.register("_exp_mates_kept", pa.table({"doc_id": result.doc_ids}))
                keep_sql = "SELECT doc_id FROM _exp_mates_kept"
                s = result.summary
                info = {"selection": "mates", "dir": result.dir, "spearman": round(result.spearman, 4),
                        "pvalue": s["influence"]["pvalue"], "probes": s["oracle"]["probes"],
                        "seconds_per_probe": result.seconds_per_probe, "pool": s["selection"]["pool"],
                        "kept": s["selection"]["kept"], "select_seconds": s["seconds"]}
            table = draw(con, keep_sql, budget, seed=seed, what=f"MATES stage {k}", exclude=used)
            if k:
                con.unregister("_exp_mates_kept")
            used = table.select(["doc_id"]) if used is None else pa.concat_tables([used, table.select(["doc_id"])])
            stages.append({"stage": k, "tokens": budget, "docs": table.num_rows, "domains": token_shares(table),
                           "seconds": round(time.perf_counter() - t0, 2), **info})
            yield from stream.feed(texts_in_order(con, table))
        raise CurateError(f"MATES stages ran out after {stream.docs} documents: they must cover the run's tokens")

    return batches, stages
