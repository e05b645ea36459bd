"""The ``train-preselect`` flow: reference family → predictive strength → selector, report as an artifact.

Scoring is the ordinary ``score`` flow with the ``preselect`` scorer (``score=True`` runs it
right after training), so shards already scored by the same selector are skipped.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from curate.preselect import train
from curate.render import inline_pictures
from curate.store import Store
from flows.score import score_flow


@flow(name="train-preselect", log_prints=True)
def train_preselect_flow(store: str, name: str = "preselect", members: list[dict[str, Any]] | None = None,
                         checkpoints: list[str] | None = None, pool_sql: str | None = None,
                         target_sql: str | None = None, sample_docs: int = 2000, target_docs: int = 400,
                         max_chars: int = 1000, fasttext: dict[str, Any] | None = None, seed: int = 0,
                         threads: int | None = None, score: bool = False, workers: int | None = None,
                         progress: bool | None = None) -> dict[str, Any]:
    """Train the PreSelect selector ``models/<name>/`` (see :func:`curate.preselect.train`); with
    ``score``, also add ``preselect_score`` to every document through the score flow."""
    log = get_run_logger()
    card = train(store, name=name, members=members, checkpoints=checkpoints or (), pool_sql=pool_sql,
                 target_sql=target_sql, sample_docs=sample_docs, target_docs=target_docs, max_chars=max_chars,
                 fasttext=fasttext, seed=seed, threads=threads, progress=progress)
    st = Store.open(store)
    report = (st.read_bytes(card.report[0]) or b"").decode() if card.report else ""
    report = inline_pictures(report, st, card.report[0].rsplit("/", 1)[0]) if report else ""
    create_markdown_artifact(report or f"PreSelect selector `{name}`: AUC {card.valid_auc}", key="curate-train-preselect",
                             description=f"PreSelect selector {name}")
    ranking = ", ".join(f"{m['name']} ({m['target_bpc']:.3f} bits/char)" for m in card.family)
    log.info("PreSelect %s: family ranked by %s: %s", name, card.ranked_by, ranking)
    print(f"PreSelect selector {name}: {card.strength['perfect']} of {card.sample_docs} sampled docs perfect; "
          f"{card.positives} positives vs {card.negatives} negatives; validation AUC {card.valid_auc:.3f}, "
          f"accuracy {card.valid_accuracy:.3f}")
    out: dict[str, Any] = {"card": asdict(card)}
    if score:
        out["scoring"] = score_flow(store, ["preselect"], {"preselect": {"model": name}}, workers=workers,
                                    progress=progress)
    return out
