"""``curate experiment``: the selection experiment (registered by ``curate.cli``; the work is curate.experiment)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from curate.cli.common import console, friendly
from curate.experiment.methods import METHODS

METHOD_NAMES = list(METHODS)

#: where each scale keeps its store unless --store says otherwise (tiny builds a small one of its own)
DEFAULT_STORES = {"tiny": "experiment-tiny-store"}


@friendly
def experiment(
    scale: Annotated[str, typer.Option(help="tiny (a minute; a 640-document store of its own), default (the whole "
                                            "embedded pool, 2.46M tokens per run, 3 seeds, random 5) or large "
                                            "(1.5x the tokens).")] = "default",
    store: Annotated[Path | None, typer.Option("--store", "-s", envvar="CURATE_STORE",
                                               help="Store with corpora 'demo' (the pool) and 'heldout' (the "
                                                    "targets); an empty or new directory gets the embedded corpus. "
                                                    "Default: demo-store (tiny: experiment-tiny-store).")] = None,
    out: Annotated[Path | None, typer.Option(help="Where report.md, results.json, the plots and runs/ go. "
                                                  "Default: experiment-out/<scale>.")] = None,
    methods: Annotated[str | None, typer.Option(help="Comma-separated subset of " + ", ".join(METHOD_NAMES) +
                                                     " (default: all; random always runs).")] = None,
    target: Annotated[list[str] | None, typer.Option(
        "--target", help="What the selections are judged on (repeatable): mixed (held-out split of the pool's "
                         "mix), math-code, prose (encyclopedic + books), corpus:NAME (a corpus in the store, e.g. "
                         "a benchmark's text you ingested) or sql:SELECT doc_id FROM docs WHERE ... Default: the "
                         "three built-in ones.")] = None,
    seed: Annotated[int, typer.Option(help="First seed; every method runs seeds seed, seed+1, ... (data windows "
                                           "and initialisation).")] = 0,
    seeds: Annotated[int | None, typer.Option(help="Seeds per method instead of the scale's (3 at default).")] = None,
    tokens: Annotated[int | None, typer.Option(help="Training tokens per method instead of the scale's "
                                                    "(evaluation points scale with it).")] = None,
    share: Annotated[float | None, typer.Option(
        "--share", help="Share of the pool's characters that preselect, preselect-strat and closest keep (top "
                        "by their score) instead of the scale's (0.3 at every scale).")] = None,
    pool: Annotated[str, typer.Option(help="Corpus the methods select from.")] = "demo",
    jobs: Annotated[int | None, typer.Option(help="Runs trained at once, each in its own process with one torch "
                                                  "thread (default: 2 at the default scale, at most the "
                                                  "CPUs).")] = None,
    workers: Annotated[int, typer.Option(help="Scoring workers when features must be made: 0 scores in this "
                                              "process, N > 0 on N Ray workers.")] = 0,
    force: Annotated[bool, typer.Option(help="Retrain runs already finished in --out with the same data and "
                                             "settings (otherwise they are reused).")] = False,
) -> None:
    """Train the same tiny LM on equal token budgets chosen by each selection method, on several targets.

    Methods: random; oracle (only the target's domains); PreSelect (a family trained on different domain
    mixtures, ranked on the target; the top share of characters, --share) and preselect-strat (the top share
    per domain); closest (Moore-Lewis: a target LM against the general one); perplexity middle band; EL2N
    keep-hard / keep-easy; MATES (stages chosen with the live model against the target); two-phase
    (end-of-training upsampling of the target's domains). Target-aware methods see only each target's
    reference half; every run is judged on the evaluation half, and pool documents that copy target text
    are excluded first.

    Each run trains on windows drawn uniformly from what its method keeps; each evaluation point is a model
    whose learning rate decayed over the last 20% of its steps (a cooldown branch). Random's seed spread is
    the noise gate (at most 0.03 bits/byte at the default scale), and each method's token multiplier comes
    with a 90% interval over the seeds. Missing features are made first with the models `curate demo`
    trains; re-running skips finished runs.

    Example: curate experiment --scale tiny    |    curate experiment --store demo-store --target math-code
    """
    from curate.experiment import run_experiment
    from curate.experiment.report import noise_note, table_rows
    from curate.render import rows_table

    store_path = store or Path(DEFAULT_STORES.get(scale, "demo-store"))
    out_dir = out or Path("experiment-out") / scale
    result = run_experiment(store_path, out_dir, scale=scale, methods=methods, targets=target or None, seed=seed,
                            seeds=seeds, pool=pool, budget=tokens, keep_share=share, workers=workers, jobs=jobs,
                            force=force, progress=None,
                            log=lambda msg: console.print(msg, markup=False, highlight=False),
                            command=_command(scale, store_path, out_dir, methods, target, seed, seeds, tokens, pool,
                                             share))
    sc = result["config"]["scale"]
    for name, cmp in result["comparison"].items():
        console.print(rows_table(table_rows(cmp), title=f"target {name} ({cmp['label']}): {sc['budget']:,} tokens "
                                                        f"per run, scale {sc['name']}"))
    console.print(noise_note(result), markup=False, highlight=False)
    t = result["timing"]
    console.print(f"wall {t['total']:.0f} s (store, features and target scores {t['prepare']:.0f} s, runs "
                  f"{t['runs']:.0f} s); report: {result['files']['report']}", markup=False)


def _command(scale: str, store: Path, out: Path, methods: str | None, targets: list[str] | None, seed: int,
             seeds: int | None, tokens: int | None, pool: str, share: float | None = None) -> str:
    """The command line that reproduces this run (recorded in the report)."""
    args = ["curate", "experiment", "--scale", scale, "--store", str(store), "--out", str(out), "--seed", str(seed)]
    args += ["--methods", methods] if methods else []
    for t in targets or []:
        args += ["--target", t]
    args += ["--seeds", str(seeds)] if seeds else []
    args += ["--tokens", str(tokens)] if tokens else []
    args += ["--share", f"{share:g}"] if share is not None else []
    args += ["--pool", pool] if pool != "demo" else []
    return shlex.join(args)


def register(app: typer.Typer) -> None:
    """Add ``experiment`` to the main app."""
    app.command("experiment")(experiment)
