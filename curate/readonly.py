"""Read-only SQL over a store: user queries may read anything but change nothing.

The guard is DuckDB's own parser, not a regex: every statement is classified
with ``duckdb.extract_statements`` and only queries run (SELECT and what DuckDB
parses as one: WITH, FROM-first, VALUES, DESCRIBE, SHOW, SUMMARIZE, and
EXPLAIN of those). COPY, CREATE/DROP/ALTER, INSERT/UPDATE/DELETE, ATTACH,
EXPORT, SET, PRAGMA, CALL, INSTALL/LOAD are refused before anything runs, so
no statement can write into the store, and a locked configuration keeps a
query from switching any of this off.

Why not ``enable_external_access = false`` with ``allowed_directories``: the
views must read the store, and DuckDB lets a query *write* wherever it may read
(``COPY ... TO '<store>/features/x/part.parquet'`` succeeds there), so it would
not protect the store; it would only forbid joining it with the user's own files
(a CSV of labels, say).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb

from curate.errors import CurateError
from curate.store import Store

_QUERY_WORDS = "SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN [ANALYZE]"
_EXPLAIN = re.compile(r"\s*EXPLAIN\s+(?:ANALY[SZ]E\s+)?", re.IGNORECASE)
_HINTS = {
    "COPY": "to save a result use --output FILE --format csv|json|parquet",
    "EXPORT": "to save a result use --output FILE --format csv|json|parquet",
    "MULTI": "a PIVOT without an IN list runs several statements: list the values, PIVOT ... ON col IN (...)",
}


class ReadOnlyError(CurateError):
    """A statement that could change something was given to a read-only connection."""


def _is_query(statement: duckdb.Statement) -> bool:
    if statement.type == duckdb.StatementType.SELECT:
        return True
    if statement.type != duckdb.StatementType.EXPLAIN:
        return False
    # EXPLAIN ANALYZE executes its statement: explain only what would itself be allowed
    head = _EXPLAIN.match(statement.query)
    if head is None:
        return False
    try:
        inner = duckdb.extract_statements(statement.query[head.end():])
    except duckdb.Error:
        return False
    return len(inner) == 1 and inner[0].type == duckdb.StatementType.SELECT


def _article(word: str) -> str:
    return "an" if word[:1] in "AEIOU" else "a"


def check_read_only(sql: str) -> list[duckdb.Statement]:
    """The statements of ``sql`` if every one is a query; raises :class:`ReadOnlyError` naming the first that is not.

    A syntax error is raised as DuckDB's own ``duckdb.ParserException`` (it says where).
    """
    statements = duckdb.extract_statements(sql)
    if not statements:
        raise ReadOnlyError("no SQL statement given: write a query, e.g. SELECT count(*) FROM docs")
    for i, statement in enumerate(statements, 1):
        if _is_query(statement):
            continue
        kind = statement.type.name
        text = " ".join(statement.query.split())
        snippet = text if len(text) <= 80 else text[:77] + "..."
        hint = _HINTS.get(kind, "the store changes only through curate commands (ingest, score, mix)")
        where = f"statement {i} of {len(statements)}" if len(statements) > 1 else "the statement"
        raise ReadOnlyError(
            f"curate sql is read-only: {where} is {_article(kind)} {kind} ({snippet}), and only queries run here "
            f"({_QUERY_WORDS}); nothing was run. {hint[0].upper()}{hint[1:]}"
        )
    return statements


def lock_down(con: duckdb.DuckDBPyConnection) -> None:
    """Freeze ``con``'s configuration so a query cannot re-enable what the read-only guard relies on."""
    # installing an extension downloads and runs code: never as a side effect of a query
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET lock_configuration = true")


def run_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyRelation | None:
    """Run ``sql`` (one or more queries) on ``con`` after :func:`check_read_only`; returns the last result."""
    rel = None
    for statement in check_read_only(sql):
        rel = con.sql(statement)  # the very statements that were checked, not a re-parse of the text
    return rel


def refuse_output_in_store(store: Store, output: str | os.PathLike[str]) -> None:
    """Refuse an output path inside the store: results go elsewhere, the store changes only through curate."""
    if not store.is_local:
        return
    target, root = Path(output).expanduser().resolve(), Path(store.root)
    if target == root or root in target.parents:
        raise ReadOnlyError(
            f"--output {output} is inside the store {root}: curate sql never writes into a store "
            "(a stray file there would join the views); choose a path outside it"
        )


def query_error(store: Store, exc: Exception) -> str:
    """What ``curate sql`` says when DuckDB fails a query; a damaged store file gets what to do about it."""

    return f"DuckDB refused the query: {exc}" + store.damaged_hint(str(exc))
