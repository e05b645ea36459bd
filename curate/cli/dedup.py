"""``curate dedup``: MinHash every new shard, cluster near-duplicates, and say what would be removed."""

from __future__ import annotations

from typing import Annotated

import typer

from curate.cli.common import StoreOpt, console, friendly, shard_failures_exit
from curate.dedup.cluster import DEFAULT_ORDER


@friendly
def dedup(
    store: StoreOpt = "store",
    verify: Annotated[bool, typer.Option(help="Check every candidate pair's real shingle Jaccard and drop the "
                                              "pairs under --min-jaccard (LSH false positives, shared headers).")] = False,
    min_jaccard: Annotated[float, typer.Option(help="With --verify: the Jaccard a candidate pair needs.")] = 0.6,
    keep_order: Annotated[str, typer.Option(help="SQL ORDER BY over doc_features; the first document of each "
                                                 "cluster is kept, e.g. 'quality DESC, doc_id'.")] = DEFAULT_ORDER,
    ngram: Annotated[int, typer.Option(help="Words per shingle.")] = 5,
    bands: Annotated[int, typer.Option(help="LSH bands (one stored 64-bit hash each).")] = 14,
    rows: Annotated[int, typer.Option(help="MinHash values per band; bands x rows hashes in all.")] = 8,
    workers: Annotated[int | None, typer.Option(help="Ray workers for hashing (default: one per CPU); 0 hashes "
                                                     "inline without Ray.")] = None,
    ray_address: Annotated[str | None, typer.Option(envvar="RAY_ADDRESS", help="Ray cluster to join.")] = None,
    force: Annotated[bool, typer.Option(help="Cluster again even if no band hash or setting changed.")] = False,
) -> None:
    """Find near-duplicate documents across every corpus of the store (MinHash LSH, FineWeb's 14 x 8 on word
    5-grams) and write the [bold]near_dup[/] feature table: dup_cluster_id, dup_cluster_size, dup_keep,
    dup_kept_doc_id. Shards hashed before are not hashed again; a mixture keeps one copy with
    `where: dup_keep`.

    A pair of documents with shingle Jaccard s becomes a candidate with probability 1 - (1 - s^8)^14:
    0.99 at 0.85, 0.92 at 0.8, 0.57 at 0.7, 0.05 at 0.5.

    Example: curate dedup --store demo-store --verify    then    curate sql sql/near_dup_clusters.sql
    """
    from curate.render import rows_table
    from flows.dedup import checked_settings, dedup_flow

    checked_settings(store, ngram=ngram, bands=bands, rows=rows, verify=verify, min_jaccard=min_jaccard,
                     keep_order=keep_order)  # one line and exit 2 before a Prefect server starts
    with shard_failures_exit():
        s = dedup_flow(store, ngram=ngram, bands=bands, rows=rows, verify=verify, min_jaccard=min_jaccard,
                       keep_order=keep_order, workers=workers, ray_address=ray_address, force=force)
    title = (f"near-duplicates: {s['clusters']:,} clusters hold {s['in_clusters']:,} documents; "
             f"{s['removed']:,} of {s['documents']:,} removable ({s['removed'] / max(s['documents'], 1):.1%}), "
             f"largest cluster {s['largest']}" + (" (unchanged since the last run)" if s["skipped"] else ""))
    console.print(rows_table([{"corpus": r["name"], **{k: v for k, v in r.items() if k != "name"}}
                              for r in s["by_corpus"]], title=title))
    console.print(rows_table([{"domain": r["name"], **{k: v for k, v in r.items() if k != "name"}}
                              for r in s["by_domain"]], title="by domain"))


def register(app: typer.Typer) -> None:
    """Add ``dedup`` to the main app."""
    app.command("dedup")(dedup)
