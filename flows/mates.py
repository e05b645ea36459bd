"""The ``mates-stage`` flow: one MATES stage from a saved checkpoint, for scheduled use.

The same work as ``MatesSelector.select`` in a pretraining job (and the same
artifacts under ``mates/<run>/stage-<k>/``); the stage report becomes a Prefect
markdown artifact. Predicting the pool goes through the scoring engine (Ray
workers with ``score_workers=None``).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from curate.mates.oracle import ProbeSettings
from curate.mates.selector import MatesSelector
from curate.render import inline_pictures
from curate.store import Store


@flow(name="mates-stage", log_prints=True)
def mates_stage(store: str, proxy: str, stage: int | None = None, run: str = "main", reference_sql: str | None = None,
                pool_sql: str | None = None, probe_sql: str | None = None, probes: int = 200,
                probe_percent: int = 10, pool_splits: int = 1, reference_docs: int = 64, keep: float = 0.2,
                tau: float = 0.5, seed: int = 0, influence: str = "ridge",
                influence_options: dict[str, Any] | None = None, probe: dict[str, Any] | None = None,
                workers: int = 0, score_workers: int | None = 0, threads: int | None = None,
                progress: bool | None = None, reuse: bool = False) -> dict[str, Any]:
    """Probe ``proxy`` (a checkpoint: store model name or local directory), train the influence model,
    predict the stage's pool into ``mates_<run>_s<stage>`` and keep ``keep`` of it by Gumbel-top-k.

    See :class:`curate.mates.MatesSelector` for every parameter; ``probe`` overrides the probe step
    (lr, weight_decay, betas, grad_clip, max_tokens, reference_tokens). ``reuse``: a stage that already ran
    from the same proxy weights with the same settings is returned without work. ``stage=None`` (what the
    scheduled ``curate-mates-stage`` deployment passes): the run's next stage, unless its last one ran from
    these very proxy weights and settings — a schedule that finds no new checkpoint does nothing, a new
    checkpoint at the same path starts the next stage. Returns ``stage.json``'s content.
    """
    log = get_run_logger()
    selector = MatesSelector(Store.open(store), proxy=proxy, run=run, reference_sql=reference_sql, pool_sql=pool_sql,
                             probe_sql=probe_sql, probes=probes, probe_percent=probe_percent, pool_splits=pool_splits,
                             reference_docs=reference_docs, keep=keep, tau=tau, seed=seed, influence=influence,
                             influence_options=influence_options, probe_settings=ProbeSettings(**(probe or {})),
                             workers=workers, score_workers=score_workers, threads=threads, progress=progress)
    if stage is None:  # the last stage if it is current, else the next one (a new checkpoint or new settings)
        last = selector.last_stage()
        done = selector.finished(last) if last is not None else None
        stage = 0 if last is None else last if done is not None else last + 1
    else:
        done = selector.finished(stage) if reuse else None
    if done is not None:
        log.info("MATES %s stage %d: up to date (same proxy weights and settings), reused", run, stage)
        return done
    result = selector.select(stage=stage)
    report = inline_pictures((selector.store.read_bytes(f"{result.dir}/report.md") or b"").decode(),
                             selector.store, result.dir)
    create_markdown_artifact(report, key=f"mates-{run}-stage-{stage}".lower().replace("_", "-"),
                             description=f"MATES run {run}, stage {stage}")
    log.info("MATES %s stage %d: Spearman %.3f on held-out probes, %.4f s per probe, kept %d of %d",
             run, stage, result.spearman, result.seconds_per_probe, len(result.doc_ids),
             result.summary["selection"]["pool"])
    return result.summary
