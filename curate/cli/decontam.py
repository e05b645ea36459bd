"""``curate decontam``: which documents hold text of an evaluation set (shared word n-grams)."""

from __future__ import annotations

from typing import Annotated

import typer

from curate.cli.common import StoreOpt, console, friendly, shard_failures_exit


@friendly
def decontam(
    target: Annotated[str, typer.Option(help="The evaluation set: a corpus of the store (e.g. heldout, or a "
                                             "benchmark you ingested) or SQL returning doc_id, text.")],
    store: StoreOpt = "store",
    n: Annotated[int, typer.Option(help="Words per n-gram (13: GPT-3's contamination study).")] = 13,
    min_coverage: Annotated[float, typer.Option(help="Contaminated when a document holds this share of some "
                                                     "target document's n-grams.")] = 0.5,
    min_fraction: Annotated[float, typer.Option(help="... or when this share of its own n-grams come from the "
                                                     "target.")] = 0.5,
    workers: Annotated[int | None, typer.Option(help="Ray workers (default: one per CPU); 0 scores inline.")] = None,
    ray_address: Annotated[str | None, typer.Option(envvar="RAY_ADDRESS", help="Ray cluster to join.")] = None,
) -> None:
    """Check every document against an evaluation set and write the [bold]decontam[/] feature table:
    overlap_ngrams, overlap_fraction, overlap_doc_id, target_coverage, contaminated. The target's n-grams
    are built once and shipped to the workers; a changed target re-scores, an unchanged one does nothing.
    A mixture drops what leaked with `where: NOT contaminated`; the target's own documents are flagged too
    (they hold themselves), so leave its corpus out of the mixture.

    Example: curate decontam --target heldout --store demo-store    then    curate sql sql/contamination.sql
    """
    from curate.render import rows_table
    from flows.decontam import check_settings, decontam_flow

    check_settings(store, target, n, min_coverage, min_fraction)  # one line and exit 2 before any server starts
    with shard_failures_exit():
        s = decontam_flow(store, target, n=n, min_coverage=min_coverage, min_fraction=min_fraction,
                          workers=workers, ray_address=ray_address)
    console.print(rows_table(s["by_corpus_domain"] or [{"corpus": "—", "contaminated": 0}],
                             title=f"{s['contaminated']:,} documents outside the target's corpus hold text of "
                                   f"{target!r}"))
    if s["worst"]:
        console.print(rows_table([{k: v for k, v in r.items() if k != "doc_id"} for r in s["worst"]],
                                 title="the most contaminated (sql/contamination.sql)"))


def register(app: typer.Typer) -> None:
    """Add ``decontam`` to the main app."""
    app.command("decontam")(decontam)
