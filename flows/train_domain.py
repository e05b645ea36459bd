"""The ``train-domain`` flow: fit the fastText domain classifier and publish its card."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from curate.domain import DEFAULT_LABELS_SQL, train_domain
from curate.render import markdown_table


@flow(name="train-domain", log_prints=True)
def train_domain_flow(store: str, name: str = "domain", labels_sql: str = DEFAULT_LABELS_SQL,
                      per_label: int = 4000, epoch: int = 10) -> dict[str, Any]:
    card = train_domain(store, name=name, labels_sql=labels_sql, per_label=per_label, epoch=epoch)
    table = markdown_table(["domain", "support", "precision", "recall"],
                           [[d, m["support"], f"{m['precision']:.3f}", f"{m['recall']:.3f}"]
                            for d, m in card.per_domain.items()])
    create_markdown_artifact("\n".join([f"## domain model `{name}`", "",
                                        f"validation accuracy **{card.accuracy:.3f}** on {card.valid_docs} docs "
                                        f"(trained on {card.train_docs})", "", *table]) + "\n",
                             key="curate-train-domain")
    print(f"domain model {name}: validation accuracy {card.accuracy:.3f}")
    return asdict(card)
