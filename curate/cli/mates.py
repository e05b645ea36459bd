"""``curate mates``: run a MATES selection stage from a checkpoint and list a run's stages (a thin face over curate.mates)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from curate.cli.common import StoreOpt, console, friendly

mates_app = typer.Typer(
    help="MATES: model-aware data selection with data influence models, one stage at a time.",
    no_args_is_help=True,
)
RunOpt = Annotated[str, typer.Option(help="Run name: artifacts in mates/<run>/stage-<k>/, predictions in feature "
                                          "table mates_<run>_s<k>, influence model in models/mates-<run>-s<k>/.")]


def stage_row(s: dict[str, Any]) -> dict[str, Any]:
    o, i, sel = s["oracle"], s["influence"], s["selection"]
    return {"stage": s["stage"], "probes": o["probes"], "s/probe": o["seconds_per_probe"],
            "pre-step loss": o["pre_loss"], "mean change": o["delta_mean"], "Spearman (held-out)": i["spearman_heldout"],
            "p": i["pvalue"], "pool": sel["pool"], "kept": sel["kept"], "wall s": s["seconds"]}


@mates_app.command("stage")
@friendly
def stage_cmd(
    proxy: Annotated[str, typer.Option(help="Checkpoint to probe: a model in the store's models/ (curate train-lm) "
                                            "or a local Hugging Face causal-LM directory.")],
    stage: Annotated[int, typer.Option(help="Stage number k >= 0: seeds the probes and the Gumbel noise and picks "
                                            "pool split k % --pool-splits.")],
    store: StoreOpt = "store",
    run: RunOpt = "main",
    probes: Annotated[int, typer.Option(help="Probe documents (one optimizer step + reference loss each).")] = 200,
    probe_percent: Annotated[int, typer.Option(help="Percent of candidates (by a hash of doc_id) held out as the "
                                                    "probe slice; never selected.")] = 10,
    pool_splits: Annotated[int, typer.Option(help="Cut the pool into this many hashed parts; stage k selects from "
                                                  "part k % n, so each stage gets a fresh pool.")] = 1,
    keep: Annotated[float, typer.Option(help="Fraction of the pool to keep.")] = 0.2,
    tau: Annotated[float, typer.Option(help="Gumbel-top-k temperature (lower: closer to plain top-k).")] = 0.5,
    seed: Annotated[int, typer.Option(help="Seed for probes, folds and Gumbel noise (with the stage number).")] = 0,
    influence: Annotated[str, typer.Option(help="ridge (frozen MiniLM embeddings, fast) or finetune (MiniLM + head, "
                                                "MSE, best epoch by held-out Spearman).")] = "ridge",
    chunk_tokens: Annotated[int, typer.Option(help="MiniLM tokens per chunk (at most 512).")] = 256,
    max_chunks: Annotated[int, typer.Option(help="Chunks per document, mean-pooled (the rest is not read).")] = 2,
    reference_sql: Annotated[str | None, typer.Option(help="SQL with a text column: the target set whose loss "
                                                           "probes are judged by (default: corpus 'heldout').")] = None,
    reference_docs: Annotated[int, typer.Option(help="Reference texts (first context window of each).")] = 64,
    pool_sql: Annotated[str | None, typer.Option(help="SQL with doc_id, text (and domain): the candidates "
                                                      "(default: every corpus except 'heldout').")] = None,
    probe_sql: Annotated[str | None, typer.Option(help="SQL with doc_id, text: probe from these instead of the "
                                                       "hashed slice (refused if it overlaps the pool).")] = None,
    workers: Annotated[int, typer.Option(help="Ray workers for probing (0: in this process).")] = 0,
    score_workers: Annotated[int, typer.Option(help="Engine workers predicting the pool: 0 scores in this process, "
                                                    "N > 0 on N Ray workers.")] = 0,
    threads: Annotated[int | None, typer.Option(help="Torch threads (default: torch's own).")] = None,
    flow: Annotated[bool, typer.Option(help="Run as the Prefect mates-stage flow (report as a Prefect "
                                            "artifact).")] = False,
) -> None:
    """Run one MATES stage from a checkpoint: probe -> influence model -> predict the pool -> Gumbel-top-k.

    Each probe is one AdamW step (lr 1e-3, wd 0.1, betas 0.9/0.95, clip 1.0) on one held-out document,
    then the reference-set loss; weights and optimizer state are restored between probes. The influence
    model learns the z-scored oracle from MiniLM embeddings; its Spearman on held-out probes is reported.

    Writes mates/<run>/stage-<k>/ (probes, pool, selection.parquet, selection.sql, report.md, PNGs,
    stage.json). Use the selection in a mixture spec: select: <store>/mates/<run>/stage-<k>/selection.sql

    Example: curate train-lm --name proxy --preset micro && curate mates stage --proxy proxy --stage 0
    """
    from curate.render import rows_table

    opts = {"chunk_tokens": chunk_tokens, "max_chunks": max_chunks}
    common: dict[str, Any] = dict(run=run, reference_sql=reference_sql, pool_sql=pool_sql, probe_sql=probe_sql,
                                  probes=probes, probe_percent=probe_percent, pool_splits=pool_splits,
                                  reference_docs=reference_docs, keep=keep, tau=tau, seed=seed, influence=influence,
                                  influence_options=opts, workers=workers, score_workers=score_workers,
                                  threads=threads)
    if flow:
        from flows.mates import mates_stage

        summary = mates_stage(str(store), proxy, stage, progress=None, **common)
    else:
        from curate.mates import MatesSelector

        summary = MatesSelector(store, proxy=proxy, progress=None, **common).select(stage=stage).summary
    console.print(rows_table([stage_row(summary)], title=f"MATES run {run}"))
    base = f"mates/{run}/stage-{stage}"
    console.print(f"selection: {summary['selection']['kept']:,} doc_ids in {base}/selection.parquet "
                  f"(query: {base}/selection.sql); report: {base}/report.md")


@mates_app.command("show")
@friendly
def show_cmd(store: StoreOpt = "store", run: RunOpt = "main") -> None:
    """List a run's stages: probes, seconds per probe, held-out Spearman, pool and kept documents."""
    from curate.errors import ConfigError
    from curate.mates.stage import finished_stages, stage_dir
    from curate.render import rows_table
    from curate.store import Store

    st = Store.open(store)
    rows = [stage_row(s) for s in (st.read_json(f"{stage_dir(run, k)}/stage.json") for k in finished_stages(st, run)) if s]
    if not rows:
        raise ConfigError(f"no finished MATES stages for run {run!r} in {st.uri}: run `curate mates stage` first")
    console.print(rows_table(rows, title=f"MATES run {run}"))


def register(app: typer.Typer) -> None:
    """Add ``mates stage|show`` to the main app."""
    app.add_typer(mates_app, name="mates")
