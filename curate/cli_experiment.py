"""``curate experiment``: the selection experiment (registered by ``curate.cli``; the work is curate.experiment)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from curate.cli_common import console, friendly

#: where each scale keeps its store unless --store says otherwise (tiny builds a small one of its own)
DEFAULT_STORES = {"tiny": "experiment-tiny-store"}


@friendly
def experiment(
    scale: Annotated[str, typer.Option(help="tiny (seconds; a 480-document store of its own), default (the "
                                            "whole embedded pool, 1.2M tokens per method, under 30 minutes on "
                                            "2 cores from an empty store) or large (3.7M tokens, 3 random "
                                            "seeds).")] = "default",
    store: Annotated[Path | None, typer.Option("--store", "-s", envvar="CURATE_STORE",
                                               help="Store with corpora 'demo' (the pool) and 'heldout' (the "
                                                    "target); an empty or new directory gets the embedded corpus. "
                                                    "Default: demo-store (tiny: experiment-tiny-store).")] = None,
    out: Annotated[Path | None, typer.Option(help="Where report.md, results.json, loss_vs_tokens.png and "
                                                  "runs/ go. Default: experiment-out/<scale>.")] = None,
    methods: Annotated[str | None, typer.Option(help="Comma-separated subset of random, preselect, ppl-middle, "
                                                     "el2n-hard, el2n-easy, mates, two-phase (default: all; "
                                                     "random always runs).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of every method's initialisation and draw order; random also "
                                           "runs seed+1, ... for the noise floor.")] = 0,
    tokens: Annotated[int | None, typer.Option(help="Training tokens per method instead of the scale's "
                                                    "(eval points scale with it).")] = None,
    pool: Annotated[str, typer.Option(help="Corpus the methods select from.")] = "demo",
    workers: Annotated[int, typer.Option(help="Scoring workers when features must be made: 0 scores in this "
                                              "process, N > 0 on N Ray workers.")] = 0,
    force: Annotated[bool, typer.Option(help="Retrain runs already finished in --out with the same data and "
                                             "settings (otherwise they are reused).")] = False,
) -> None:
    """Train the same tiny LM on equal token budgets chosen by each selection method and compare held-out loss.

    Methods: random; PreSelect (top 10% of characters by preselect_score); perplexity middle band (middle
    half of each domain by reference-LM bits per byte); EL2N keep-hard and keep-easy (half of each domain);
    MATES (random first stage, then each stage selected with the live model and its optimizer); two-phase
    (the pool's domain shares, then the last 20% upsampling math, code and encyclopedic text).

    Each method draws exactly its token budget (within one document) from what it keeps and trains the
    scale's LM (same shape, seed and constant learning rate after warm-up, one thread). Held-out loss on
    corpus 'heldout' is measured at several budgets; random trains twice as long with two seeds. The
    report gives each method's token multiplier: the tokens random needs to reach the method's final loss,
    divided by the method's tokens (>1 saves tokens; '<'/'>' when outside random's measured curve), with the
    random seeds' spread as the noise floor.

    Missing features (perplexity, EL2N, PreSelect scores) are made first with the models `curate demo`
    trains; on a demo store nothing is recomputed. Re-running skips finished runs.

    Example: curate experiment --scale tiny    |    curate experiment --store demo-store --methods preselect,mates
    """
    from curate.experiment import run_experiment
    from curate.experiment.report import noise_note, table_rows
    from curate.render import rows_table

    store_path = store or Path(DEFAULT_STORES.get(scale, "demo-store"))
    out_dir = out or Path("experiment-out") / scale
    result = run_experiment(store_path, out_dir, scale=scale, methods=methods, seed=seed, pool=pool, budget=tokens,
                            workers=workers, force=force, progress=None,
                            log=lambda msg: console.print(msg, markup=False, highlight=False),
                            command=_command(scale, store_path, out_dir, methods, seed, tokens, pool))
    sc = result["config"]["scale"]
    console.print(rows_table(table_rows(result), title=f"selection experiment, scale {sc['name']}: "
                                                       f"{sc['budget']:,} tokens per method"))
    console.print(noise_note(result), markup=False, highlight=False)
    t = result["timing"]
    console.print(f"wall {t['total']:.0f} s (store and features {t['prepare']:.0f} s, runs {t['runs']:.0f} s); "
                  f"report: {result['files']['report']}, plot: {result['files']['plot']}", markup=False)


def _command(scale: str, store: Path, out: Path, methods: str | None, seed: int, tokens: int | None,
             pool: str) -> str:
    """The command line that reproduces this run (recorded in the report)."""
    args = ["curate", "experiment", "--scale", scale, "--store", str(store), "--out", str(out), "--seed", str(seed)]
    args += ["--methods", methods] if methods else []
    args += ["--tokens", str(tokens)] if tokens else []
    args += ["--pool", pool] if pool != "demo" else []
    return shlex.join(args)


def register(app: typer.Typer) -> None:
    """Add ``experiment`` to the main app."""
    app.command("experiment")(experiment)
