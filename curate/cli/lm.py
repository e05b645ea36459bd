"""``curate train-lm``: train a tiny reference LM on the store (registered by ``curate.cli``)."""

from __future__ import annotations

from typing import Annotated

import typer

from curate.cli.common import StoreOpt, console, friendly


@friendly
def train_lm_cmd(
    store: StoreOpt = "store",
    name: Annotated[str, typer.Option(help="Model name: written to models/<name>/ (HF format + card.json).")] = "tiny-lm",
    preset: Annotated[str, typer.Option(help="Model size: micro (~0.1M params), tiny (~0.9M), small (~10M) or medium (~25M).")] = "tiny",
    sql: Annotated[str | None, typer.Option(help="SQL with a `text` column selecting training documents "
                                                 "(default: every corpus except 'heldout').")] = None,
    eval_sql: Annotated[str | None, typer.Option(help="SQL for the held-out set (default: corpus 'heldout' if "
                                                      "present, else a hashed 2% of the training SQL).")] = None,
    tokens: Annotated[int | None, typer.Option(help="Training tokens (bytes); raise it for a stronger model. "
                                                    "Default: the preset's (tiny 2M).")] = None,
    seq_len: Annotated[int | None, typer.Option(help="Context length (also the scorer's window).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Sequences per step.")] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate (default: the preset's).")] = None,
    schedule: Annotated[str, typer.Option(help="cosine (warmup + cosine) or wsd (warmup-stable-decay).")] = "cosine",
    seed: Annotated[int, typer.Option(help="Seed for initialisation and data order (same seed, same weights).")] = 0,
    seeds: Annotated[int, typer.Option(help="Train this many models with seeds seed, seed+1, ... named <name>-s0, "
                                            "<name>-s1, ...: the proxy family EL2N and GraNd average over.")] = 1,
    threads: Annotated[int | None, typer.Option(help="Torch threads (default: 1 for models under 2M parameters, which are overhead-bound, else all cores).")] = None,
    force: Annotated[bool, typer.Option(help="Retrain even if the same request already produced this model.")] = False,
) -> None:
    """Train a small Llama-style byte-level LM on documents in the store, offline on CPU.

    The model lands in models/<name>/ in Hugging Face format with card.json (parameters, tokens
    seen, held-out loss and bits per byte, seed, weights SHA-256). Score with it:
    curate score --scorers perplexity --model <name>; a proxy family for EL2N/GraNd:
    curate train-lm --name proxy --seeds 3 --tokens 200000, then curate score --scorers el2n,grand --model proxy
    """
    from curate.lm.train import DEFAULT_SQL, seed_runs, train_lm
    from curate.render import rows_table

    runs = seed_runs(name, seed, seeds)
    cards = [train_lm(str(store), n, config=preset, sql=sql or DEFAULT_SQL, eval_sql=eval_sql, tokens=tokens,
                      seq_len=seq_len, batch_size=batch_size, lr=lr, schedule=schedule, seed=s, threads=threads,
                      force=force) for n, s in runs]
    console.print(rows_table([{
        "model": card.name, "params": f"{card.params:,}", "tokens seen": f"{card.tokens_seen:,}",
        "steps": card.steps, "held-out loss (nats/token)": card.heldout_loss,
        "held-out bits/byte": card.heldout_bits_per_byte, "tokens/s": f"{card.tokens_per_second:,.0f}",
        "wall s": card.wall_seconds,
    } for card in cards], title="models/"))


def register(app: typer.Typer) -> None:
    """Add ``train-lm`` to the main app."""
    app.command("train-lm")(train_lm_cmd)
