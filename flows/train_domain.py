"""The ``train-domain`` flow: fit the fastText domain classifier and publish its card."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from scorers.domain import DEFAULT_LABELS_SQL, train_domain


@flow(name="train-domain", log_prints=True)
def train_domain_flow(store: str, name: str = "domain", labels_sql: str = DEFAULT_LABELS_SQL,
                      per_label: int = 4000, epoch: int = 10) -> dict[str, Any]:
    card = train_domain(store, name=name, labels_sql=labels_sql, per_label=per_label, epoch=epoch)
    rows = "".join(
        f"| {d} | {m['support']} | {m['precision']:.3f} | {m['recall']:.3f} |\n" for d, m in card.per_domain.items()
    )
    create_markdown_artifact(
        f"## domain model `{name}`\n\nvalidation accuracy **{card.accuracy:.3f}** on {card.valid_docs} docs "
        f"(trained on {card.train_docs})\n\n| domain | support | precision | recall |\n|---|---|---|---|\n{rows}",
        key="curate-train-domain",
    )
    print(f"domain model {name}: validation accuracy {card.accuracy:.3f}")
    return asdict(card)
