"""The ``train-lm`` flow: train a reference LM (or a seed family of proxies) and publish the cards."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from curate.lm.train import DEFAULT_SQL, seed_runs, train_lm
from curate.render import markdown_table


@flow(name="train-lm", log_prints=True)
def train_lm_flow(store: str, name: str = "tiny-lm", config: str = "tiny", seeds: int = 1, seed: int = 0,
                  tokens: int | None = None, sql: str = DEFAULT_SQL, progress: bool | None = None) -> list[dict[str, Any]]:
    """Train ``name`` (``seeds`` > 1: ``name-s0``, ``name-s1``, ... with seeds ``seed``, ``seed+1``, ...)."""
    cards = [train_lm(store, n, config=config, seed=s, tokens=tokens, sql=sql, progress=progress)
             for n, s in seed_runs(name, seed, seeds)]
    table = markdown_table(["model", "params", "tokens seen", "held-out loss (nats/token)", "bits/byte", "wall s"],
                           [[c.name, f"{c.params:,}", f"{c.tokens_seen:,}", f"{c.heldout_loss:.4f}",
                             f"{c.heldout_bits_per_byte:.4f}", f"{c.wall_seconds:.1f}"] for c in cards])
    create_markdown_artifact("\n".join(["## reference LMs", "", *table]) + "\n", key="curate-train-lm")
    for c in cards:
        print(f"{c.name}: {c.params:,} params, {c.tokens_seen:,} tokens, held-out {c.heldout_bits_per_byte:.3f} bits/byte")
    return [asdict(c) for c in cards]
