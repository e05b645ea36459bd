"""The DuckDB queries behind ``curate browse``: totals, a filtered page of documents, one document.

Every query runs on a read-only connection (:func:`curate.query.connect` with ``read_only=True``); the
user's own ``WHERE`` text runs only after :func:`curate.readonly.check_read_only`, the guard of
``curate sql`` (what ``run_read_only`` does: the very statement checked runs, nothing else). Filter values travel as bound parameters and column names are checked against
``doc_features``, so nothing but the WHERE box reaches the SQL text. Lists never load all rows: a
page is one ``ORDER BY ... LIMIT/OFFSET`` over only the feature tables it names
(:func:`curate.query.narrow_doc_features`), and text is read for that page's documents only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import duckdb

from curate.errors import ConfigError
from curate.lineage import features_of, mixture_uses
from curate.query import narrow_doc_features
from curate.readonly import ReadOnlyError, check_read_only
from curate.stats import domain_table, quarantine_table
from curate.store import Store

NEAR_DUP = "near_dup"  # the table curate.dedup.cluster writes (dup_cluster_id, dup_keep, ...)
SNIPPET_CHARS = 240
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
            "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL")
_LIST_COLUMNS = ["doc_id", "corpus", "domain", "n_bytes"]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def numeric_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The ``doc_features`` columns a page can sort or filter by: every number (scores, counts, n_bytes)."""
    rows = con.sql("DESCRIBE doc_features").fetchall()
    return [name for name, kind, *_ in rows if kind.split("(")[0] in _NUMERIC]


def token_column(columns: list[str]) -> str | None:
    """The full token count of every document when the store has one: ``token_count`` of the ``tokens`` table
    (curate.mixture.token_counts). Not a scorer's ``n_tokens``: the LM scorers count only the tokens they read,
    at most their context (the perplexity scorer's ``truncated`` says when)."""
    return "token_count" if "token_count" in columns else None


def overview(con: duckdb.DuckDBPyConnection, store: Store, columns: list[str]) -> dict[str, Any]:
    """Documents, bytes (and tokens when a token column exists) per corpus and domain; quarantine by reason."""
    domains = domain_table(con)
    out: dict[str, Any] = {"domains": (domains.columns, domains.fetchall())}
    tokens = token_column(columns)
    if tokens:
        src = narrow_doc_features(con, store, tokens)
        rel = con.sql(f"SELECT corpus, coalesce(domain, '(none)') AS domain, sum({_ident(tokens)}) AS tokens "
                      f"FROM {src} GROUP BY ALL")
        out["tokens"] = {(c, d): t for c, d, t in rel.fetchall()}
        out["token_column"] = tokens
    quarantine = quarantine_table(con)
    out["quarantine"] = quarantine.fetchall()
    return out


def quarantined(con: duckdb.DuckDBPyConnection, corpus: str | None, reason: str | None, page: int,
                per_page: int) -> tuple[list[str], list[tuple[Any, ...]], bool]:
    """One page of quarantined records (where they were, why, the raw text), and whether more follow."""
    cols = ["corpus", "input", "unit", "position", "reason", "detail", "raw"]
    rel = con.sql(
        f"SELECT {', '.join(cols)} FROM quarantine WHERE ($corpus IS NULL OR corpus = $corpus) "
        "AND ($reason IS NULL OR reason = $reason) ORDER BY corpus, input, position LIMIT $n OFFSET $o",
        params={"corpus": corpus, "reason": reason, "n": per_page + 1, "o": page * per_page})
    rows = rel.fetchall()
    return cols, rows[:per_page], len(rows) > per_page


@dataclass
class DocQuery:
    """What a documents page asks for: the filters of its form, the sort and the page."""

    domain: str | None = None
    corpus: str | None = None
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)  # column -> (min, max)
    where: str = ""
    sort: str | None = None
    descending: bool = True
    page: int = 0
    per_page: int = 50


class BadQuery(Exception):
    """A filter the page refuses (an unknown column, a WHERE that is not a query, SQL DuckDB rejects)."""


def check_where(where: str) -> None:
    """Refuse a WHERE text that is, or smuggles in, a statement other than a query (as ``curate sql`` would)."""
    try:
        check_read_only(where)  # "DELETE FROM docs" given whole is a DELETE: refused by name
    except duckdb.ParserException:
        pass  # the usual case, an expression such as "ppl > 10": not a statement on its own
    # "1=1; DROP TABLE docs" reads as a query and then a DROP
    check_read_only(f"SELECT 1 FROM doc_features WHERE {where}")


def documents(con: duckdb.DuckDBPyConnection, store: Store, numeric: list[str],
              q: DocQuery) -> tuple[list[str], list[dict[str, Any]], bool]:
    """One page of documents matching ``q``: the listed columns, a text snippet, and whether more follow."""
    for col in [*q.ranges, *([q.sort] if q.sort else [])]:
        if col not in numeric:
            raise BadQuery(f"unknown score column {col!r}: choose one of {', '.join(numeric)}")
    shown = list(dict.fromkeys([*_LIST_COLUMNS, *([q.sort] if q.sort else []), *q.ranges]))
    conds, params = [], {}
    for key in ("domain", "corpus"):
        if getattr(q, key):
            conds.append(f"{key} = ${key}")
            params[key] = getattr(q, key)
    for i, (col, (lo, hi)) in enumerate(q.ranges.items()):
        for bound, op, value in (("lo", ">=", lo), ("hi", "<=", hi)):
            if value is not None:
                conds.append(f"{_ident(col)} {op} ${bound}{i}")
                params[f"{bound}{i}"] = value
    if q.where.strip():
        try:
            check_where(q.where)
        except duckdb.Error as exc:  # a syntax error, said where it is
            raise BadQuery(f"DuckDB could not read the WHERE filter: {exc}") from None
        conds.append(f"({q.where}\n)")  # a trailing "--" comment in the box ends at its own line
    source = narrow_doc_features(con, store, *shown, q.where)
    order = f"{_ident(q.sort)} {'DESC' if q.descending else 'ASC'} NULLS LAST, doc_id" if q.sort else "doc_id"
    sql = (f"SELECT {', '.join(_ident(c) for c in shown)} FROM {source} AS doc_features\n"
           f"{'WHERE ' + ' AND '.join(conds) if conds else ''}\nORDER BY {order}")
    try:
        statements = check_read_only(sql)  # the composed text again: the WHERE box cannot break out of it
        if len(statements) != 1:
            raise ReadOnlyError("the WHERE filter must be one expression, not several statements")
        # the very statement that was checked (as run_read_only does), with the form's values bound; the
        # page's LIMIT/OFFSET wraps it as a relation, so no comment or parenthesis in the box can drop it
        rel = con.sql(statements[0], params=params or None).limit(q.per_page + 1, offset=q.page * q.per_page)
        rows = [dict(zip(shown, r)) for r in rel.fetchall()]
    except duckdb.Error as exc:
        raise BadQuery(f"DuckDB refused the filter: {exc}") from None
    more = len(rows) > q.per_page
    rows = rows[:q.per_page]
    snippets = _snippets(con, [r["doc_id"] for r in rows])
    for r in rows:
        r["snippet"] = snippets.get(r["doc_id"], "")
    return shown, rows, more


def _snippets(con: duckdb.DuckDBPyConnection, ids: list[str]) -> dict[str, str]:
    """The first characters of each document of a page (text read for these documents only)."""
    if not ids:
        return {}
    rel = con.sql(f"SELECT doc_id, left(text, {SNIPPET_CHARS}) FROM docs WHERE doc_id IN $ids",
                  params={"ids": ids})
    return dict(rel.fetchall())


def document(con: duckdb.DuckDBPyConnection, store: Store, doc_id: str) -> dict[str, Any] | None:
    """One document with every ``doc_features`` value (read by position where the store allows: fast on
    10 M documents) and its uses in the store's mixtures (``"uses"``); None when no document has ``doc_id``."""
    try:
        values = features_of(con, store, doc_id)
    except ConfigError:  # no such document
        return None
    return {"features": values, "uses": mixture_uses(con, store, doc_id)}


def near_duplicates(con: duckdb.DuckDBPyConnection, store: Store, cluster_id: int,
                    limit: int = 100) -> list[tuple[Any, ...]]:
    """The members of a near-duplicate cluster (doc_id, kept?, domain, snippet), the kept one first."""
    if NEAR_DUP not in store.feature_tables():
        return []
    return con.sql(
        f"SELECT n.doc_id, n.dup_keep, d.domain, left(d.text, {SNIPPET_CHARS}) FROM {_ident(NEAR_DUP)} n "
        "JOIN docs d USING (doc_id) WHERE n.dup_cluster_id = $c ORDER BY n.dup_keep DESC, n.doc_id LIMIT $n",
        params={"c": cluster_id, "n": limit}).fetchall()


def show_value(value: Any) -> str:
    """A feature value as a page shows it: floats to 6 significant digits, lists and maps as JSON."""
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.6g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)[:2000]
    return "" if value is None else str(value)
