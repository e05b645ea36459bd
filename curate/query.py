"""DuckDB over the store: ``docs``, ``quarantine``, one view per feature table, and ``doc_features``."""

from __future__ import annotations

import os
import re

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import CurateError
from curate.shards import feature_path
from curate.view_sql import (
    RESERVED_VIEWS,
    SQL_DIR,  # re-exported: callers find the shipped queries here
    base_views_sql,
    doc_features_select,
    doc_features_sql,
    feature_aliases,
    select_list,
    selected_columns,
)
from curate.store import Store

def _feature_columns(store: Store, table: str) -> list[str]:
    first = store.list_files(store.features_dir(table))[0]
    with store.fs.open_input_file(store.path(first)) as f:
        return pq.read_schema(f).names


def views_sql(store: Store) -> str:
    """All view definitions for ``store``, with paths relative to its root."""
    parts = [base_views_sql()]
    tables = {t: _feature_columns(store, t) for t in store.feature_tables() if t not in RESERVED_VIEWS}
    for t in tables:
        parts.append(
            f"-- feature table {t}\nCREATE OR REPLACE VIEW \"{t}\" AS\n"
            f"SELECT * FROM read_parquet('features/{t}/*.parquet', union_by_name = true);\n"
        )
    parts.append(doc_features_sql(tables))
    return "\n".join(parts)


def _feature_tables(con: duckdb.DuckDBPyConnection, store: Store) -> dict[str, list[str]]:
    """Feature table -> its columns, in the store's order (the full view's names).

    Only tables this connection has views of: one whose first file a running scorer committed after the
    views were defined is left out (as a fresh :func:`connect` would have left it before), instead of failing
    the query with "Table ... does not exist" (seen when a scheduled report ran beside a MATES stage)."""
    out = {}
    for t in store.feature_tables():
        if t in RESERVED_VIEWS:
            continue
        try:
            out[t] = [r[0] for r in con.execute(f'DESCRIBE "{t}"').fetchall()]
        except duckdb.CatalogException:
            continue
    return out


def _named_tables(tables: dict[str, list[str]], *sql: str) -> set[str]:
    """The feature tables with a column (by its ``doc_features`` name) that a word of ``sql`` names."""
    words = {w.lower() for text in sql for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)}
    return {t for t, _col, alias in feature_aliases(tables) if alias.lower() in words}


def narrow_doc_features(con: duckdb.DuckDBPyConnection, store: Store, *sql: str) -> str:
    """A ``doc_features`` subquery joining only the feature tables whose columns ``sql`` may name.

    DuckDB keeps every LEFT JOIN of the full view even when a filter reads one table; on 10M
    documents each join on the string ids costs seconds. Over-inclusion is harmless: a table is
    joined when any word of ``sql`` is one of its column names.
    """
    tables = _feature_tables(con, store)
    only = _named_tables(tables, *sql)
    aligned = _aligned_files(con, store, sorted(only)) if only else None
    if aligned is not None:
        return f"({_positional_select(tables, only, *aligned)})"
    return f"({doc_features_select(tables, only)})"


def docs_with_location(store: Store) -> str:
    """``docs`` plus where each row is: ``doc_file`` (store-relative shard) and ``doc_row`` (its row there),
    for reading a document back by position (:func:`doc_features_at`). An object store's docs are read
    through pyarrow, without file names: NULL there."""
    if not store.is_local:
        return "(SELECT *, NULL::VARCHAR AS doc_file, NULL::BIGINT AS doc_row FROM docs)"
    root = store.root.rstrip("/") + "/"
    # DuckDB names each file as the glob found it: the store root, then the store-relative path
    return (f"(SELECT * EXCLUDE (filename, file_row_number), CASE WHEN starts_with(filename, {_quote(root)}) "
            f"THEN substr(filename, {len(root) + 1}) END AS doc_file, file_row_number AS doc_row "
            f"FROM read_parquet({_quote(root + 'shards/*/*.parquet')}, union_by_name = true, filename = true, "
            "file_row_number = true))")


def doc_features_at(con: duckdb.DuckDBPyConnection, store: Store, rows: dict[str, list[int]],
                    columns: list[str] | None = None) -> str | None:
    """A ``doc_features`` subquery (the feature tables with ``columns``, default all) of just ``rows`` (shard file,
    store-relative -> row numbers in it), with ``doc_file`` and ``doc_row``: only the row groups holding
    those rows are read, each feature table by position in its file aligned with the shard. None when the
    files do not align (see :func:`_aligned_files`) or a file is not a shard: look the documents up by id."""
    tables = _feature_tables(con, store)
    only = set(tables) if columns is None else _named_tables(tables, *columns)
    aligned = _aligned_files(con, store, sorted(only))
    if aligned is None or not rows:
        return None
    shards, files = aligned
    index = {s: i for i, s in enumerate(shards)}
    if any(f not in index for f in rows):
        return None
    selects = [_positional_select(tables, only, [f], {t: [files[t][index[f]]] for t in only}, rows=sorted(set(r)))
               for f, r in sorted(rows.items())]
    return "(" + "\nUNION ALL BY NAME\n".join(selects) + ")"


def _footers(con: duckdb.DuckDBPyConnection, store: Store, rel_dir_glob: str) -> dict[str, tuple[int, str, str]]:
    """store-relative file -> (rows, min doc_id, max doc_id), from the Parquet footers only."""
    root = store.root.rstrip("/") + "/"
    rows = con.execute(
        "SELECT file_name, sum(row_group_num_rows), min(lo), max(hi), 2 * count(*) - count(lo) - count(hi) "
        "FROM (SELECT file_name, row_group_num_rows, coalesce(stats_min_value, stats_min) AS lo, "
        "             coalesce(stats_max_value, stats_max) AS hi "
        "      FROM parquet_metadata(?) WHERE path_in_schema = 'doc_id') GROUP BY ALL",
        [root + rel_dir_glob]).fetchall()
    if any(missing for *_rest, missing in rows):
        return {}  # a row group without statistics: alignment cannot be proven from the footers
    return {f.removeprefix(root): (int(n), lo, hi) for f, n, lo, hi, _m in rows}


def _aligned_files(con: duckdb.DuckDBPyConnection, store: Store,
                   tables: list[str]) -> tuple[list[str], dict[str, list[str]]] | None:
    """The docs shards and, per table, its feature files in the same order, when they align row for row.

    The engine writes one feature file per input shard, ``features/<t>/<corpus>--<part>``, with the
    shard's rows in the shard's order (it checks the doc_id order of every batch). So when every
    shard has its feature file with the same row count and the same lowest and highest doc_id (128-bit
    content hashes: a different set of documents cannot match), the i-th row of one is the i-th of the
    other and a POSITIONAL JOIN replaces the join on string ids (20x faster on 10M documents). Anything
    else (a table not scored everywhere, an extra file, footers without statistics, an object store)
    returns None: the caller joins on doc_id.
    """
    if not store.is_local:
        return None
    try:
        docs = _footers(con, store, "shards/*/*.parquet")
        feats = {t: _footers(con, store, f"features/{t}/*.parquet") for t in tables}
    except duckdb.Error:
        return None
    shards = sorted(docs)
    if not shards:
        return None
    out: dict[str, list[str]] = {}
    for t, files in feats.items():
        want = [feature_path(store, t, *s.split("/")[1:]) for s in shards]  # shards/<corpus>/<name>
        if len(files) != len(want) or any(files.get(w) != docs[s] for w, s in zip(want, shards)):
            return None
        out[t] = want
    return shards, out


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _file_list(files: list[str]) -> str:
    return "[" + ", ".join(_quote(f) for f in files) + "]"


def _positional_select(tables: dict[str, list[str]], only: set[str], shards: list[str],
                       files: dict[str, list[str]], rows: list[int] | None = None) -> str:
    """The same columns as :func:`doc_features_select`, joined by position over aligned files; with ``rows``
    (of the one file in ``shards``) only those rows, plus their ``doc_file`` and ``doc_row``."""
    def read(paths: list[str], columns: str) -> str:
        if rows is None:
            return f"SELECT {columns} FROM read_parquet({_file_list(paths)}, union_by_name = true)"
        # a filter on the row number: DuckDB reads only the row groups that hold them
        return (f"SELECT {columns} FROM read_parquet({_file_list(paths)}, file_row_number = true) "
                f"WHERE file_row_number IN ({', '.join(str(int(r)) for r in rows)})")

    cols = selected_columns(tables, only)
    located = "*" if rows is None else \
        f"* EXCLUDE (file_row_number), {_quote(shards[0])} AS doc_file, file_row_number AS doc_row"
    sources = [f"({read(shards, located)}) AS docs"]
    for t in (t for t in tables if t in only):
        picked = ", ".join(f'"{col}"' for tt, col, _alias in cols if tt == t)
        sources.append(f'({read(files[t], picked)}) AS "{t}"')
    return select_list(tables, only) + "\nFROM " + "\nPOSITIONAL JOIN ".join(sources)


def positional_doc_features(con: duckdb.DuckDBPyConnection, st: Store) -> bool:
    """Redefine ``doc_features`` as a POSITIONAL JOIN of the files present when every feature table's files
    align with the shards (:func:`_aligned_files`); returns whether it did. Same rows and columns as the
    id join, ~50x faster over 10 M documents; the file list is fixed here, so a connection that outlives
    a scoring run calls :func:`define_views` again (as for a new feature table)."""
    tables = _feature_tables(con, st)
    aligned = _aligned_files(con, st, sorted(tables)) if tables else None
    if aligned is None:
        return False
    con.execute("CREATE OR REPLACE VIEW doc_features AS\n" + _positional_select(tables, set(tables), *aligned))
    return True


def define_views(con: duckdb.DuckDBPyConnection, st: Store) -> None:
    """(Re)define the store's views on ``con``: after a run wrote new feature files, call it again.

    ``doc_features`` joins the feature tables by position where their files align with the shards (what
    the engine writes), else on ``doc_id``."""
    # pyarrow reports a damaged or unreachable remote file as ArrowException / OSError, DuckDB as duckdb.Error
    refused = (duckdb.Error,) if st.is_local else (duckdb.Error, pa.ArrowException, OSError)
    try:
        if st.is_local:
            con.execute("SET file_search_path = ?", [st.root])
            con.execute(views_sql(st))  # reads every file's schema: a damaged file fails here, for every command
            positional_doc_features(con, st)
        else:  # DuckDB reads S3 only through an extension it downloads: read through the store's pyarrow.fs
            from curate.arrow_views import register_views

            register_views(con, st)
    except refused as exc:
        raise CurateError(f"cannot open the views of store {st.uri!r}: {exc}" + st.damaged_hint(str(exc))) from None


def connect(store: Store | str | os.PathLike[str], *, database: str = ":memory:",
            read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the store's views defined.

    ``read_only=True`` locks the connection's configuration; run user SQL on it with
    :func:`curate.readonly.run_read_only`, which refuses any statement but a query
    (what ``curate sql`` does).

    >>> con = connect("store")                       # doctest: +SKIP
    >>> con.sql("SELECT domain, count(*) FROM docs GROUP BY 1").show()
    """
    st = Store.of(store)
    if not st.corpora():
        raise CurateError(f"store {st.uri!r} has no documents yet: run `curate ingest` first")
    con = duckdb.connect(database)
    try:
        define_views(con, st)
    except CurateError:
        con.close()
        raise
    if read_only:
        from curate.readonly import lock_down

        lock_down(con)
    return con
