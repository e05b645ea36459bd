"""One MATES stage, whatever holds the model: probe -> influence model -> predict the pool -> Gumbel-top-k.

Both entry points end here — :class:`curate.mates.MatesSelector` with a live
model from a pretraining job, and the ``mates_stage`` Prefect flow with a saved
checkpoint — so both write the same artifacts under ``mates/<run>/stage-<k>/``:

- ``probes.parquet``: doc_id, domain, tokens, oracle loss / change / z-score, held-out prediction
- ``pool.parquet``: the stage's candidates (doc_id, domain)
- ``influence_card.json``: the influence model's card (the model is ``models/mates-<run>-s<k>/``)
- ``selection.parquet`` + ``selection.sql``: the kept documents, and a query returning their doc_id
  (a mixture spec's ``select:``)
- ``stage.json``, ``report.md``, ``oracle.png``, ``domains.png``

Predictions go through the scoring engine into the feature table
``mates_<run>_s<k>`` (one row per document; null outside the pool).
"""

from __future__ import annotations

import io
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import ConfigError, CurateError
from curate.lm.load import LoadedLM
from curate.mates.data import (
    StageData,
    default_candidates_sql,
    default_reference_sql,
    stage_data,
)
from curate.mates.oracle import OracleResult, ProbeSettings, probe_oracle
from curate.mates.select import gumbel_top_k, keep_count
from curate.store import Store, check_name


@dataclass
class StageConfig:
    """What a stage does besides which model it probes. See :class:`curate.mates.MatesSelector` for each field."""

    run: str = "main"
    candidates_sql: str | None = None
    reference_sql: str | None = None
    probe_sql: str | None = None
    probes: int = 200
    probe_percent: int = 10
    pool_splits: int = 1
    reference_docs: int = 64
    keep: float = 0.2
    tau: float = 0.5
    seed: int = 0
    influence: str = "ridge"
    influence_options: dict[str, Any] = field(default_factory=dict)
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    workers: int = 0  # Ray workers for probing (0: this process)
    score_workers: int | None = 0  # the engine's workers for predicting the pool (0: this process, None: Ray)
    progress: bool | None = False


@dataclass
class StageResult:
    """What a stage chose and how well its influence model ranked held-out probes."""

    run: str
    stage: int
    dir: str  # store-relative: mates/<run>/stage-<k>
    table: str  # feature table with this stage's mates_influence
    model: str  # models/<model>/ holds the influence model
    doc_ids: list[str]  # selected, best Gumbel key first
    selection_sql: str  # SELECT doc_id ... (runs on curate.connect(store))
    summary: dict[str, Any]

    @property
    def spearman(self) -> float:
        return float(self.summary["influence"]["spearman_heldout"])

    @property
    def seconds_per_probe(self) -> float:
        return float(self.summary["oracle"]["seconds_per_probe"])


def stage_dir(run: str, stage: int) -> str:
    return f"mates/{check_name('MATES run', run)}/stage-{int(stage)}"


def finished_stages(store: Store, run: str) -> list[int]:
    """Stage numbers of ``run`` that wrote their ``stage.json``, in order."""
    run_dir = stage_dir(run, 0).rsplit("/", 1)[0]
    found = (d[len("stage-"):] for d in store.list_dirs(run_dir) if d.startswith("stage-"))
    return sorted(int(k) for k in found if k.isdigit() and store.exists(f"{stage_dir(run, int(k))}/stage.json"))


def table_name(run: str, stage: int) -> str:
    """Feature table of a stage: ``mates_<run>_s<k>`` (SQL-friendly: no quoting needed)."""
    return f"mates_{re.sub(r'[^A-Za-z0-9_]', '_', run)}_s{int(stage)}"


def model_name(run: str, stage: int) -> str:
    return f"mates-{run}-s{int(stage)}"


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def _probe_table(data: StageData, oracle: OracleResult, heldout: np.ndarray) -> pa.Table:
    post = oracle.post_loss
    ok = np.isfinite(post)
    z = np.full(len(post), np.nan)
    if ok.sum() > 1:
        z[ok] = (post[ok] - post[ok].mean()) / (post[ok].std() or 1.0)
    return pa.table({"doc_id": data.probes.column("doc_id"), "domain": data.probes.column("domain"),
                     "n_tokens": pa.array(oracle.n_tokens, pa.int32()), "oracle_loss": post,
                     "oracle_delta": oracle.delta, "oracle_z": z, "heldout_pred": heldout})


def _predict_pool(st: Store, cfg: StageConfig, fit_model: str, table: str, pool_rel: str) -> tuple[pa.Table, Any]:
    """Score the pool through the engine (feature table ``table``), then read back (doc_id, domain, prediction)."""
    from curate.execute import run_scorer
    from curate.mates.scorer import MatesScorer
    from curate.query import connect

    scorer = MatesScorer(st.path(st.models_dir(fit_model)), table=table, pool=st.path(pool_rel))
    report = run_scorer(st, scorer, workers=cfg.score_workers, progress=cfg.progress)
    if report.failed:
        raise CurateError(f"scoring the pool failed on {len(report.failed)} shard(s): {report.failed[0]['error']}")
    con = connect(st)
    pred = con.sql(f"SELECT p.doc_id, any_value(p.domain) AS domain, any_value(f.mates_influence) AS mates_influence "
                   f"FROM read_parquet('{pool_rel}') p JOIN \"{table}\" f USING (doc_id) "
                   "GROUP BY p.doc_id ORDER BY p.doc_id").to_arrow_table()
    return pred, report


def _shares(domains: list[Any]) -> dict[str, float]:
    vals, counts = np.unique(np.array([str(d) for d in domains], dtype=object), return_counts=True)
    return {str(v): float(c / max(1, len(domains))) for v, c in zip(vals, counts)}


def run_stage(store: Store | str, lm: LoadedLM, stage: int, cfg: StageConfig, *,
              moments: list[dict[str, Any] | None] | None = None, proxy: str = "live model",
              extra: dict[str, Any] | None = None) -> StageResult:
    """Run stage ``stage`` of MATES run ``cfg.run`` with ``lm`` (see the module docstring); ``extra`` goes
    into ``stage.json`` as is (the proxy's weights hash, for reuse)."""
    from curate.mates.influence import train_influence
    from curate.mates.report import write_report
    from curate.query import connect

    st = Store.of(store)
    if not st.is_local:
        raise ConfigError("MATES stages need a local store (the influence encoder and DuckDB read local files)")
    if stage < 0:
        raise ConfigError(f"stage must be >= 0, got {stage}")
    t_start = time.perf_counter()
    base, table, fit_model = stage_dir(cfg.run, stage), table_name(cfg.run, stage), model_name(cfg.run, stage)
    con = connect(st)
    corpora = st.corpora()
    candidates = cfg.candidates_sql or default_candidates_sql(corpora)
    reference = cfg.reference_sql or default_reference_sql(corpora)
    data = stage_data(con, stage=stage, candidates_sql=candidates, reference_sql=reference, probes=cfg.probes,
                      probe_percent=cfg.probe_percent, pool_splits=cfg.pool_splits, probe_sql=cfg.probe_sql,
                      reference_docs=cfg.reference_docs, seed=cfg.seed)
    con.close()
    texts = data.probes.column("text").to_pylist()
    oracle = probe_oracle(lm.model, lm.encoder, data.reference_texts, texts, cfg.probe, context=lm.context,
                          moments=moments, workers=cfg.workers, progress=cfg.progress)
    opts = {"seed": cfg.seed, **cfg.influence_options}
    fit = train_influence(st, fit_model, texts, oracle.post_loss, kind=cfg.influence, progress=cfg.progress, **opts)
    st.write_bytes(f"{base}/probes.parquet", _parquet(_probe_table(data, oracle, fit.heldout_pred)))
    st.write_json(f"{base}/influence_card.json", asdict(fit.card))
    pool_rel = f"{base}/pool.parquet"
    st.write_bytes(pool_rel, _parquet(data.pool))
    t_pred = time.perf_counter()
    pred, score_report = _predict_pool(st, cfg, fit_model, table, pool_rel)
    pred_seconds = time.perf_counter() - t_pred
    values = pred.column("mates_influence").to_numpy(zero_copy_only=False)
    if pred.num_rows != data.pool.num_rows or not np.isfinite(values).all():
        raise CurateError(f"{table}: {pred.num_rows} predictions for {data.pool.num_rows} pool documents "
                          f"({int((~np.isfinite(values)).sum())} missing): re-run the stage")
    k = keep_count(pred.num_rows, cfg.keep)
    idx, keys = gumbel_top_k(values, k, tau=cfg.tau, seed=[cfg.seed, stage])
    selected = pa.table({"doc_id": pred.column("doc_id").take(idx), "domain": pred.column("domain").take(idx),
                         "mates_influence": pa.array(values[idx], pa.float32()),
                         "gumbel_key": pa.array(keys[idx]), "rank": pa.array(np.arange(1, k + 1), pa.int32())})
    st.write_bytes(f"{base}/selection.parquet", _parquet(selected))
    selection_sql = f"SELECT doc_id FROM read_parquet('{base}/selection.parquet')"
    st.write_bytes(f"{base}/selection.sql", (f"-- MATES run {cfg.run!r}, stage {stage}: the {k} documents kept by "
                                             f"Gumbel-top-k (tau {cfg.tau}) of {pred.num_rows} candidates\n"
                                             f"{selection_sql}\n").encode())
    card = fit.card
    summary = {
        "run": cfg.run, "stage": stage, "proxy": proxy, "table": table, "influence_model": fit_model,
        "config": {**asdict(cfg), "probe": cfg.probe.to_dict()},
        "data": data.rules,
        "oracle": {"pre_loss": oracle.pre_loss, "post_loss_mean": float(np.nanmean(oracle.post_loss)),
                   "delta_mean": float(np.nanmean(oracle.delta)), "delta_std": float(np.nanstd(oracle.delta)),
                   "delta_min": float(np.nanmin(oracle.delta)), "delta_max": float(np.nanmax(oracle.delta)),
                   "probes": len(texts), "seconds": round(oracle.seconds, 3),
                   "seconds_per_probe": round(oracle.seconds_per_probe, 5),
                   "setup_seconds": round(oracle.setup_seconds, 3), "workers": oracle.workers,
                   "moments": oracle.moments, **oracle.extra},
        "influence": {"kind": card.kind, "spearman_heldout": card.spearman_heldout, "pvalue": card.pvalue,
                      "heldout_probes": card.heldout_probes, "heldout_how": card.heldout_how,
                      "spearman_train": card.spearman_train, "selected": card.selected,
                      "embed_seconds": card.embed_seconds, "fit_seconds": card.fit_seconds},
        "selection": {"pool": pred.num_rows, "kept": k, "keep": cfg.keep, "tau": cfg.tau,
                      "pool_domain_shares": _shares(pred.column("domain").to_pylist()),
                      "selected_domain_shares": _shares(selected.column("domain").to_pylist()),
                      "predict_seconds": round(pred_seconds, 3), "predict_docs_scored": score_report.rows},
        "seconds": round(time.perf_counter() - t_start, 3),
    }
    summary.update(extra or {})
    write_report(st, base, summary, data.probes, oracle, fit.heldout_pred)
    st.write_json(f"{base}/stage.json", summary)
    return StageResult(cfg.run, stage, base, table, fit_model, selected.column("doc_id").to_pylist(), selection_sql, summary)
