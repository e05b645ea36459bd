"""``curate ingest``, ``curate stats`` and ``curate sql``: documents into the store, and SQL over it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from curate.cli.common import StoreOpt, console, err, friendly
from curate.errors import CurateError


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


@friendly
def ingest(
    inputs: Annotated[list[Path], typer.Argument(help="JSONL (.jsonl/.json[.gz|.zst]), Parquet, a directory of text files, or a datasets.save_to_disk directory.")],
    store: StoreOpt = "store",
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
    workers: Annotated[int, typer.Option(help="0 (default) reads every input in this process; N spreads the inputs "
                                              "over N one-CPU Ray workers (same documents, duplicates, quarantine and "
                                              "summary; each input is committed once, in order).")] = 0,
    ray_address: Annotated[str | None, typer.Option(envvar="RAY_ADDRESS", help="Ray cluster for --workers to join "
                                                    "(default: start a local one).")] = None,
    piece_mb: Annotated[int, typer.Option(help="With --workers: plain JSON lines files larger than this are read "
                                               "in byte ranges of about this size (whole lines), Parquet files in "
                                               "ranges of whole row groups, spread over the workers; smaller "
                                               "inputs go to one worker each.")] = 32,
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
        workers=workers, ray_address=ray_address, piece_bytes=piece_mb << 20,
    )
    if json_out:
        console.print_json(json.dumps(summary.to_dict()))
    else:
        _print_ingest(summary)


@friendly
def stats(
    store: StoreOpt = "store",
    corpus: Annotated[str | None, typer.Option(help="Only this corpus.")] = None,
) -> None:
    """Documents, MB and estimated tokens per corpus and domain, and quarantine counts."""
    from curate.query import connect
    from curate.render import relation_table
    from curate.stats import domain_table, quarantine_table

    con = connect(store)
    console.print(relation_table(domain_table(con, corpus), title="documents per domain"))
    console.print(relation_table(quarantine_table(con, corpus), title="quarantine"))


@friendly
def sql(
    query: Annotated[str | None, typer.Argument(help="SQL over views docs, quarantine, <feature tables>, doc_features. A path to a .sql file works too.")] = None,
    store: StoreOpt = "store",
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




def register(app: typer.Typer) -> None:
    """Add ``ingest``, ``stats`` and ``sql`` to the main app."""
    app.command("ingest")(ingest)
    app.command("stats")(stats)
    app.command("sql")(sql)
