"""DuckDB over the store: ``docs``, ``quarantine``, one view per feature table, and ``doc_features``."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from curate.errors import CurateError
from curate.ingestion.schema import DOC_SCHEMA
from curate.store import Store

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
RESERVED_VIEWS = {"docs", "quarantine", "doc_features"}


def base_views_sql() -> str:
    return (SQL_DIR / "views.sql").read_text()


def _feature_columns(store: Store, table: str) -> list[str]:
    first = store.list_files(store.features_dir(table))[0]
    with store.fs.open_input_file(store.path(first)) as f:
        return pq.read_schema(f).names


def views_sql(store: Store) -> str:
    """All view definitions for ``store``, with paths relative to its root."""
    parts = [base_views_sql()]
    tables = [t for t in store.feature_tables() if t not in RESERVED_VIEWS]
    joins, select, taken = [], ["docs.*"], set(DOC_SCHEMA.names)
    for t in tables:
        parts.append(
            f"-- feature table {t}\nCREATE OR REPLACE VIEW \"{t}\" AS\n"
            f"SELECT * FROM read_parquet('features/{t}/*.parquet', union_by_name = true);\n"
        )
        joins.append(f'LEFT JOIN "{t}" USING (doc_id)')
        for col in _feature_columns(store, t):
            if col == "doc_id":
                continue
            alias = col if col not in taken else f"{t}_{col}"
            select.append(f'"{t}"."{col}" AS "{alias}"')
            taken.add(alias)
    parts.append(
        "-- documents joined with every feature table on doc_id\n"
        "CREATE OR REPLACE VIEW doc_features AS\nSELECT " + ",\n       ".join(select)
        + "\nFROM docs" + "".join(f"\n{j}" for j in joins) + ";\n"
    )
    return "\n".join(parts)


def connect(store: Store | str | os.PathLike[str], *, database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the store's views defined.

    >>> con = connect("store")                       # doctest: +SKIP
    >>> con.sql("SELECT domain, count(*) FROM docs GROUP BY 1").show()
    """
    st = store if isinstance(store, Store) else Store.open(store)
    if not st.corpora():
        raise CurateError(f"store {st.uri!r} has no documents yet: run `curate ingest` first")
    con = duckdb.connect(database)
    if st.is_local:
        con.execute("SET file_search_path = ?", [st.root])
    else:  # object stores: let DuckDB read through the same pyarrow/fsspec filesystem
        raise CurateError("querying a remote store is not supported yet: copy it locally or use pyarrow.dataset")
    con.execute(views_sql(st))
    return con
