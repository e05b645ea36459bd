"""``curate lineage``: what a training step saw and why, or where a document was used."""

from __future__ import annotations

from typing import Annotated

import typer

from curate.cli.common import StoreOpt, console, friendly
from curate.errors import ConfigError


@friendly
def lineage(
    store: StoreOpt = "store",
    mixture: Annotated[str | None, typer.Option(help="Mixture name (with --step).")] = None,
    step: Annotated[int | None, typer.Option(help="Training step (0-based): one batch per rank.")] = None,
    global_batch: Annotated[int, typer.Option(help="Windows per step over all ranks.")] = 8,
    seq_len: Annotated[int, typer.Option(help="Tokens per window minus one, as MixtureDataset(seq_len=...).")] = 256,
    world_size: Annotated[int, typer.Option(help="Ranks (global batch = world size x per-rank batch).")] = 1,
    workers: Annotated[int, typer.Option(help="DataLoader workers per rank (0: none).")] = 0,
    doc: Annotated[str | None, typer.Option(help="A doc_id: every mixture, phase, epoch and step that used it.")] = None,
) -> None:
    """The documents that fed training step --step of --mixture (rank, window, the document's token range in
    the window, phase, epoch, where it came from, the scores the spec's selection read, the rule that admitted
    it) — or, with --doc, everywhere a document was used, its near-duplicate status and its features.
    Read from plan.parquet, the manifest and the features: nothing is copied.

    Example: curate lineage --store demo-store --mixture demo-mix --step 120 --global-batch 8 --seq-len 256
    """
    from curate.lineage import at_step, uses_of
    from curate.render import rows_table

    if doc:
        u = uses_of(store, doc, seq_len=seq_len, global_batch=global_batch)
        console.print(rows_table(u["uses"] or [{"mixture": "—"}], title=f"where {doc} was used"))
        if u["near_duplicate"]:
            console.print(f"near-duplicate status: {u['near_duplicate']}")
        console.print(rows_table([{"feature": k, "value": v} for k, v in u["features"].items() if k != "text"],
                                 title="its features"))
        return
    if mixture is None or step is None:
        raise ConfigError("give --mixture and --step (what a step saw) or --doc (where a document was used)")
    if global_batch % world_size:
        raise ConfigError(f"--global-batch {global_batch} is not a multiple of --world-size {world_size}")
    t = at_step(store, mixture, step, batch_size=global_batch // world_size, seq_len=seq_len,
                world_size=world_size, num_workers=workers)
    rows = t.drop_columns(["source", "url", "phase_weights", "rule"]).to_pylist()
    console.print(rows_table(rows, title=f"{mixture}, step {step}: {t.num_rows} document pieces in "
                                         f"{len(set(t.column('window').to_pylist()))} windows"))
    if t.num_rows:
        console.print(f"rule: {t.column('rule')[0].as_py()}")


def register(app: typer.Typer) -> None:
    """Add ``lineage`` to the main app."""
    app.command("lineage")(lineage)
