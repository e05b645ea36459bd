"""MATES as the paper runs it: staged and model-aware, inside the training run.

The run's steps are cut into ``stages`` equal stages. Stage 0 trains on random
windows (exactly the first windows of the random run with the same seed: both are
the same model at the first boundary). When the main run reaches a later stage, the
data source hands the *live* model and its optimizer to
:meth:`curate.mates.MatesSelector.select`, which probes a private copy (one AdamW
step per probe document, reference-set loss after it), fits the ridge influence
model on MiniLM embeddings, predicts a fresh slice of the pool and keeps 20% by
Gumbel-top-k; the stage then trains on windows drawn from those documents. The
reference set is the target's reference half. A cooldown branch never crosses into
a stage the main run has not selected (evaluation points sit inside stages).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from curate.errors import ConfigError, CurateError
from curate.experiment.methods import pool_where
from curate.experiment.targets import Target
from curate.experiment.windows import Component, Phase, draw_windows
from curate.store import Store

KEEP, TAU, PROBE_PERCENT, MARGIN, MIN_KEPT = 0.2, 0.5, 10, 1.5, 25


def stage_bounds(steps: int, stages: int) -> list[int]:
    """First step of each stage, and ``steps`` at the end."""
    if steps < stages:
        raise ConfigError(f"MATES: {steps} training steps are fewer than its {stages} stages")
    return [steps * k // stages for k in range(stages)] + [steps]


def pool_splits(con: duckdb.DuckDBPyConnection, pool: str, per_stage: int, stages: int) -> int:
    """How many hashed slices to cut the pool into so one slice's kept share covers a stage ``MARGIN`` times
    and holds at least ``MIN_KEPT`` documents (document sizes are heavy-tailed: a mean can mislead)."""
    docs, supply = con.sql(f"SELECT count(*), sum(n_bytes + 1) FROM docs WHERE {pool_where(pool)}").fetchall()[0]
    share = (1 - PROBE_PERCENT / 100) * KEEP
    by_tokens = int((supply or 0) * share // (MARGIN * max(1, per_stage)))
    by_docs = int(docs * share // MIN_KEPT)
    return max(1, min(by_tokens, by_docs, 1000), stages - 1)


class MatesData:
    """The ``StepData`` of a MATES run: stage k's windows are drawn when the main run first reaches it."""

    def __init__(self, st: Store, con: duckdb.DuckDBPyConnection, *, pool: str, target: Target, steps: int,
                 stages: int, batch_size: int, seq_len: int, seed: int, run: str, probes: int, reference_docs: int,
                 chunk_tokens: int, threads: int, exclude_sql: str | None, log: Callable[[str], None]) -> None:
        from curate.mates import MatesSelector

        self.con, self.pool, self.seed, self.log = con, pool, seed, log
        self.bs, self.seq_len, self.exclude = batch_size, seq_len, exclude_sql
        self.bounds = stage_bounds(steps, stages)
        per_stage = (self.bounds[-1] - self.bounds[-2]) * batch_size * seq_len
        self.splits = pool_splits(con, pool, per_stage, stages)
        skip = f" AND doc_id NOT IN ({exclude_sql})" if exclude_sql else ""
        self.selector = MatesSelector(
            st, run=run, pool_sql=f"SELECT doc_id, text, domain FROM docs WHERE {pool_where(pool)}{skip}",
            reference_sql=target.reference_sql, probes=probes, probe_percent=PROBE_PERCENT, pool_splits=self.splits,
            reference_docs=reference_docs, keep=KEEP, tau=TAU, seed=seed, influence="ridge",
            influence_options={"chunk_tokens": chunk_tokens, "max_chunks": 1}, workers=0, score_workers=0,
            threads=threads, progress=False)
        self.stage = -1
        self.windows = np.empty((0, seq_len), np.uint16)
        self.stages: list[dict[str, Any]] = []
        self.domain_tokens: dict[str, dict[str, int]] = {}

    def _stage_of(self, step: int) -> int:
        return int(np.searchsorted(self.bounds, step, side="right")) - 1

    def batch(self, step: int, model: Any, optimizer: Any, branch: bool) -> np.ndarray:
        k = self._stage_of(step)
        if k != self.stage:
            if branch or k != self.stage + 1:
                raise CurateError(f"MATES: step {step} (stage {k}) asked for before stage {self.stage + 1} was "
                                  "selected: an evaluation point crosses a stage boundary")
            self._select(k, model, optimizer)
        lo = (step - self.bounds[k]) * self.bs
        return self.windows[lo: lo + self.bs]

    def _select(self, k: int, model: Any, optimizer: Any) -> None:
        t0 = time.perf_counter()
        n = (self.bounds[k + 1] - self.bounds[k]) * self.bs
        pool_sql = f"SELECT doc_id FROM docs WHERE {pool_where(self.pool)}"
        if k == 0:  # the random run's first windows (same seed, same phase and component names)
            phase = Phase("main", 1.0, (Component(pool_sql, 1.0, "pool"),))
            info: dict[str, Any] = {"selection": "random"}
        else:
            self.log(f"  mates stage {k}: selecting with the live model (pool slice {k % self.splits} of {self.splits})")
            result = self.selector.select(model, stage=k, optimizer=optimizer)
            self.con.register("_exp_mates_kept", pa.table({"doc_id": result.doc_ids}))
            phase = Phase(f"stage-{k}", 1.0, (Component("SELECT doc_id FROM _exp_mates_kept", 1.0, "mates"),))
            s = result.summary
            info = {"selection": "mates", "dir": result.dir, "spearman": round(result.spearman, 4),
                    "pvalue": s["influence"]["pvalue"], "probes": s["oracle"]["probes"],
                    "seconds_per_probe": result.seconds_per_probe, "pool": s["selection"]["pool"],
                    "kept": s["selection"]["kept"], "kept_domains": s["selection"]["selected_domain_shares"]}
        # stage 0 draws the random run's stream; its first n windows are exactly random's first n
        d = draw_windows(self.con, [phase], n, self.seq_len, seed=self.seed, pool_where=pool_where(self.pool),
                         exclude=self.exclude)
        if k:
            self.con.unregister("_exp_mates_kept")
        self.windows, self.stage = d.windows, k
        tokens = next(iter(d.domain_tokens.values()))
        self.domain_tokens[f"stage-{k}"] = tokens
        self.stages.append({"stage": k, "tokens": d.tokens, "domains": _shares(tokens),
                            "seconds": round(time.perf_counter() - t0, 2), **info})


def _shares(tokens: dict[str, int]) -> dict[str, float]:
    total = sum(tokens.values()) or 1
    return {d: round(n / total, 4) for d, n in sorted(tokens.items(), key=lambda kv: -kv[1])}
