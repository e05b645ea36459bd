"""The ``dedup`` flow: MinHash band hashes for every shard still missing them (Ray), then near-duplicate clusters."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from curate.dedup.cluster import (
    DEFAULT_ORDER,
    ClusterSettings,
    ClusterSummary,
    check_keep_order,
    cluster_near_duplicates,
)
from curate.query import connect
from curate.render import markdown_table
from curate.store import Store
from flows.score import score_flow
from scorers.registry import build_scorer


@task(name="cluster-near-duplicates", cache_policy=NO_CACHE)
def cluster_task(store: str, settings: ClusterSettings, force: bool) -> ClusterSummary:
    return cluster_near_duplicates(store, settings, force=force)


def summary_markdown(summary: ClusterSummary) -> str:
    """The flow's artifact: totals, then removals per corpus and per domain."""
    head = (f"## curate dedup\n\n{summary.documents:,} documents, {summary.hashed:,} hashed; "
            f"{summary.clusters:,} clusters hold {summary.in_clusters:,} documents; **{summary.removed:,} removable** "
            f"({summary.removed / max(summary.documents, 1):.1%}); largest cluster {summary.largest}; "
            f"{summary.candidate_edges:,} candidate edges, {summary.kept_edges:,} kept"
            f"{' after verification' if summary.settings.get('verify') else ''}.\n")
    parts = [head]
    for title, rows in (("corpus", summary.by_corpus), ("domain", summary.by_domain)):
        parts += ["", f"### by {title}", "", *markdown_table(
            [title, "documents", "in clusters", "removed", "removed share"],
            [[r["name"], r["documents"], r["in_clusters"], r["removed"], f"{r['removed_share']:.1%}"] for r in rows])]
    return "\n".join(parts) + "\n"


def checked_settings(store: str, *, ngram: int, bands: int, rows: int, verify: bool, min_jaccard: float,
                     keep_order: str) -> ClusterSettings:
    """The clustering settings, after refusing (before any work) a bad hash setting or keep ordering."""
    settings = ClusterSettings(verify=verify, min_jaccard=min_jaccard, keep_order=keep_order, ngram=ngram)
    st = Store.open(store)
    build_scorer(st, "minhash", ngram=ngram, bands=bands, rows=rows)
    with connect(st) as con:
        check_keep_order(con, keep_order)
    return settings


@flow(name="dedup", log_prints=True)
def dedup_flow(store: str, ngram: int = 5, bands: int = 14, rows: int = 8, verify: bool = False,
               min_jaccard: float = 0.6, keep_order: str = DEFAULT_ORDER, workers: int | None = None,
               ray_address: str | None = None, force: bool = False, progress: bool | None = None) -> dict[str, Any]:
    """Hash what is new (``minhash`` scorer), cluster everything stored, write ``near_dup``; see curate.dedup."""
    settings = checked_settings(store, ngram=ngram, bands=bands, rows=rows, verify=verify,
                                min_jaccard=min_jaccard, keep_order=keep_order)
    score_flow(store, ["minhash"], {"minhash": {"ngram": ngram, "bands": bands, "rows": rows}},
               workers=workers, ray_address=ray_address, progress=progress)
    summary = cluster_task(store, settings, force)
    create_markdown_artifact(summary_markdown(summary), key="curate-dedup", description="near-duplicate clusters")
    print(f"near-duplicates: {summary.clusters} clusters, {summary.removed} of {summary.documents} documents "
          f"removable{' (unchanged: clustering skipped)' if summary.skipped else ''}")
    return summary.to_dict()
