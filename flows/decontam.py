"""The ``decontam`` flow: score every shard against one target's word n-grams, then say what leaked."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from curate.query import SQL_DIR, connect
from curate.render import markdown_table
from curate.store import Store
from flows.score import score_flow
from scorers.registry import build_scorer


def check_settings(store: str, target: str, n: int, min_coverage: float, min_fraction: float) -> None:
    """Build the scorer once to refuse an empty or unknown target, a bad n or threshold before a flow (and its
    Prefect server) starts; what the CLI calls."""
    build_scorer(Store.open(store), "decontam", target=target, n=n, min_coverage=min_coverage,
                 min_fraction=min_fraction)


def contamination_summary(store: str) -> dict[str, Any]:
    """Contaminated documents per corpus and domain (outside the target's own corpus) and the worst cases."""
    con = connect(store)
    try:
        by = con.sql("""SELECT d.corpus, d.domain, count(*) AS documents,
                               count(*) FILTER (WHERE d.contaminated AND d.corpus <> t.corpus) AS contaminated
                        FROM doc_features d LEFT JOIN docs t ON t.doc_id = d.overlap_doc_id
                        GROUP BY ALL HAVING contaminated > 0 ORDER BY contaminated DESC, 1, 2""").fetchall()
        worst = con.sql((SQL_DIR / "contamination.sql").read_text()).limit(10).fetchall()
    finally:
        con.close()
    return {"by_corpus_domain": [dict(zip(("corpus", "domain", "documents", "contaminated"), r)) for r in by],
            "contaminated": sum(r[3] for r in by),
            "worst": [dict(zip(("corpus", "domain", "doc_id", "target_doc_id", "target_corpus", "overlap_ngrams",
                                "target_coverage", "overlap_fraction", "opening"), r)) for r in worst]}


@flow(name="decontam", log_prints=True)
def decontam_flow(store: str, target: str, n: int = 13, min_coverage: float = 0.5, min_fraction: float = 0.5,
                  workers: int | None = None, ray_address: str | None = None,
                  progress: bool | None = None) -> dict[str, Any]:
    """Flag documents holding much of a ``target`` document (corpus name or SQL) into the ``decontam`` table."""
    # score_flow builds the scorer (the target's n-grams) before any work, refusing a bad target or setting
    settings = {"target": target, "n": n, "min_coverage": min_coverage, "min_fraction": min_fraction}
    scoring = score_flow(store, ["decontam"], {"decontam": settings}, workers=workers, ray_address=ray_address,
                         progress=progress)
    summary = {"target": target, **contamination_summary(store), "scoring": scoring}
    table = markdown_table(["corpus", "domain", "documents", "contaminated"],
                           [[r["corpus"], r["domain"], r["documents"], r["contaminated"]]
                            for r in summary["by_corpus_domain"]])
    head = (f"**{summary['contaminated']:,}** documents outside the target's corpus hold ≥ {min_coverage:.0%} of a "
            f"target document's {n}-grams (or ≥ {min_fraction:.0%} of theirs come from it).")
    create_markdown_artifact("\n".join([f"## curate decontam against `{target}`", "", head, "", *table]) + "\n",
                             key="curate-decontam", description=f"contamination against {target}")
    print(f"decontam against {target}: {summary['contaminated']} contaminated documents")
    return summary
