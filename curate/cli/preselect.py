"""``curate preselect``: train a PreSelect selector and score the store with it (a thin face over curate.preselect)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from curate.cli.common import StoreOpt, console, friendly, shard_failures_exit
from curate.errors import ConfigError

preselect_app = typer.Typer(
    help="PreSelect (predictive data selection): keep the documents whose losses predict model ability.",
    no_args_is_help=True,
)
NameOpt = Annotated[str, typer.Option(help="Selector name: models/<name>/ holds model.bin, card.json and the report.")]


def _accuracies(items: list[str]) -> dict[str, float] | None:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ConfigError(f"--accuracy takes MODEL=VALUE (e.g. preselect-ref5=0.41), got {item!r}")
    return out or None


@preselect_app.command("train")
@friendly
def train_cmd(
    store: StoreOpt = "store",
    name: NameOpt = "preselect",
    sample_docs: Annotated[int, typer.Option(help="Pool documents that get a predictive strength (the selector's "
                                                  "training candidates).")] = 2000,
    max_chars: Annotated[int, typer.Option(help="Characters of each document the family scores and the selector "
                                                "sees (scoring uses the same cap).")] = 1000,
    target_sql: Annotated[str | None, typer.Option(help="SQL with a text column the family is ranked on (default: "
                                                        "corpus 'heldout', else a hashed 1/20 of the pool). Files "
                                                        "work too: SELECT text FROM read_parquet('t.parquet').")] = None,
    pool_sql: Annotated[str | None, typer.Option(help="SQL with doc_id, text (and domain) to sample from (default: "
                                                      "every corpus except 'heldout').")] = None,
    checkpoint: Annotated[list[str] | None, typer.Option(help="Extra reference model (repeatable): a local Hugging "
                                                              "Face directory, a model in the store, or smollm2-135m.")] = None,
    default_family: Annotated[bool, typer.Option(help="Train the six default tiny LMs (different sizes, seeds and "
                                                      "data slices); --no-default-family uses only --checkpoint "
                                                      "models.")] = True,
    accuracy: Annotated[list[str] | None, typer.Option(help="MODEL=ACCURACY (repeatable, one per member): rank the "
                                                            "family by task accuracy instead of target loss.")] = None,
    epoch: Annotated[int, typer.Option(help="fastText epochs: 3 is the paper's (trained on far more documents); "
                                            "on a few hundred positives P(positive) then stays near 0.5 — the order "
                                            "still holds, raise it (e.g. 50) for spread-out probabilities.")] = 3,
    positive_strength: Annotated[int | None, typer.Option(help="Strength a positive needs (default: the maximum, "
                                                               "the paper's perfect documents; one less lets one "
                                                               "model pair disagree).")] = None,
    positive_share: Annotated[float | None, typer.Option(help="Instead of a strength bar: the top share of the "
                                                              "sample by how closely a document's losses track the "
                                                              "target's across the family (Pearson; e.g. 0.1).")] = None,
    negatives: Annotated[str, typer.Option(help="lowest: as many as the positives, the lowest strengths (the "
                                                "paper); rest: every other sampled document (a small sample's "
                                                "lowest are often one kind of text).")] = "lowest",
    seed: Annotated[int, typer.Option(help="Seed for the sample, the split and fastText.")] = 0,
    threads: Annotated[int | None, typer.Option(help="Torch / fastText threads (default: all cores).")] = None,
    force: Annotated[bool, typer.Option(help="Retrain the selector even if the same request made it already.")] = False,
) -> None:
    """Train a PreSelect selector: reference family → predictive strength → fastText, into models/<name>/.

    A family of independently trained LMs is ranked by measured loss on a target set; each sampled
    document's strength is the number of model pairs whose bits per character follow that ranking
    (ties are misses); a fastText classifier learns perfect-strength documents against the lowest
    (lr 0.1, dim 100, wordNgrams 2, epoch 3).

    Refuses a degenerate family (nearly all or nearly no perfect scores) and shows the distribution.
    Writes models/<name>/ (model.bin, card.json, family.json, strength.parquet, report.md, strength.png).
    Then: curate preselect score
    """
    from curate.preselect import train
    from curate.preselect.report import spread_note
    from curate.render import rows_table

    card = train(str(store), name=name, members=None if default_family else [], checkpoints=checkpoint or (),
                 pool_sql=pool_sql, target_sql=target_sql, accuracies=_accuracies(accuracy or []),
                 sample_docs=sample_docs, max_chars=max_chars, fasttext={"epoch": epoch}, seed=seed, threads=threads,
                 positive_strength=positive_strength, positive_share=positive_share, negatives=negatives,
                 force=force)
    console.print(rows_table([{"rank": m["rank"], "model": m["name"], "params": m["params"] or 0,
                               "target bits/char": m["target_bpc"], "target nats/token": m["target_loss"]}
                              for m in card.family], title=f"reference family, best first ({card.ranked_by})"))
    s = card.strength
    console.print(f"predictive strength over {card.sample_docs:,} docs (score: docs): "
                  + ", ".join(f"{k}: {v}" for k, v in s["distribution"].items() if v)
                  + f" — perfect ({s['max']}): {s['perfect']} ({s['perfect_share']:.1%})")
    console.print(rows_table([{"domain": d, **r} for d, r in card.positives_by_domain.items()],
                             title="where positives come from"))
    console.print(f"selector [bold]{name}[/]: {card.positives} positives vs {card.negatives} negatives, "
                  f"validation AUC [bold]{card.valid_auc:.3f}[/], accuracy {card.valid_accuracy:.3f} "
                  f"({card.valid_docs} docs)")
    console.print(spread_note(card).removeprefix("- ").replace("**", "").replace("`", ""))
    if card.report:
        console.print(f"report: {card.report[0]} (in the store)")


@preselect_app.command("score")
@friendly
def score_cmd(
    store: StoreOpt = "store",
    name: NameOpt = "preselect",
    model_path: Annotated[Path | None, typer.Option(help="Score with this PreSelect .bin instead (e.g. the published "
                                                         "classifier).")] = None,
    positive_label: Annotated[str | None, typer.Option(help="The selector's positive label (default 1, as curate and "
                                                            "the published classifier write it).")] = None,
    max_chars: Annotated[int | None, typer.Option(help="Cap each document (default: the cap the selector was trained "
                                                       "with; whole documents for a --model-path).")] = None,
    corpus: Annotated[list[str] | None, typer.Option(help="Only these corpora (repeatable). Default: all.")] = None,
    workers: Annotated[int | None, typer.Option(help="Ray workers (default: one per CPU); 0 scores inline.")] = None,
    share: Annotated[float, typer.Option(help="Report the top share of the pool by characters (the paper keeps "
                                              "0.1).")] = 0.1,
) -> None:
    """Add preselect_score = P(positive) to every document (none dropped), through the Prefect score flow.

    Shards scored earlier by the same selector and settings are skipped. Select afterwards in SQL:
    curate sql --store STORE sql/select_preselect_top.sql (top 10% by characters, threshold over
    the whole pool), or curate.preselect.top_share(store, share=0.1) in Python.
    """
    from curate.query import connect
    from curate.render import rows_table
    from curate.selection import top_share
    from flows.score import score_flow

    cfg: dict[str, object] = {"model_path": str(model_path)} if model_path else {"model": name}
    cfg.update({k: v for k, v in (("positive_label", positive_label), ("max_chars", max_chars)) if v is not None})
    with shard_failures_exit():
        rows = score_flow(store, ["preselect"], {"preselect": cfg}, corpus or None, workers)
    console.print(rows_table(rows, title="preselect scoring"))
    n, chars, lo = top_share(connect(store), share=share).aggregate("count(*), sum(n_chars), min(score)").fetchall()[0]
    if n:
        console.print(f"top {share:.0%} by characters: {n:,} docs, {chars:,} characters, preselect_score >= {lo:.4f}")


def register(app: typer.Typer) -> None:
    """Add ``preselect train|score`` to the main app."""
    app.add_typer(preselect_app, name="preselect")
