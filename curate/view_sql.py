"""The SQL text of a store's views (``docs``, ``quarantine``, a view per feature table, ``doc_features``).

Pure text builders shared by :mod:`curate.query` (views over the files for DuckDB) and
:mod:`curate.arrow_views` (the same views over pyarrow datasets on object stores); the base
views and the starter queries are the ``.sql`` files shipped in the package (``curate/sql/``,
which the repository's top-level ``sql/`` links to).
"""

from __future__ import annotations

from pathlib import Path

from curate.ingestion.schema import DOC_SCHEMA

SQL_DIR = Path(__file__).resolve().parent / "sql"
RESERVED_VIEWS = {"docs", "quarantine", "doc_features"}


def base_views_sql() -> str:
    return (SQL_DIR / "views.sql").read_text()


def feature_aliases(tables: dict[str, list[str]]) -> list[tuple[str, str, str]]:
    """(table, column, name in ``doc_features``) for every feature column; clashing names get the table's prefix."""
    out, taken = [], set(DOC_SCHEMA.names)
    for t, columns in tables.items():
        for col in columns:
            if col == "doc_id":
                continue
            alias = col if col not in taken else f"{t}_{col}"
            out.append((t, col, alias))
            taken.add(alias)
    return out


def doc_features_select(tables: dict[str, list[str]], only: set[str] | None = None) -> str:
    """``SELECT docs.*, <feature columns> FROM docs LEFT JOIN ...`` over ``tables`` (or the subset ``only``).

    Column names do not depend on ``only``: a narrow join answers the same SQL as the full view.
    """
    joins = [f'LEFT JOIN "{t}" USING (doc_id)' for t in tables if only is None or t in only]
    return select_list(tables, only) + "\nFROM docs" + "".join(f"\n{j}" for j in joins)


def selected_columns(tables: dict[str, list[str]], only: set[str] | None) -> list[tuple[str, str, str]]:
    return [c for c in feature_aliases(tables) if only is None or c[0] in only]


def select_list(tables: dict[str, list[str]], only: set[str] | None) -> str:
    """``SELECT docs.*, "<table>"."<col>" AS "<alias>", ...``: the columns ``doc_features`` gives."""
    select = ["docs.*"] + [f'"{t}"."{col}" AS "{alias}"' for t, col, alias in selected_columns(tables, only)]
    return "SELECT " + ",\n       ".join(select)


def doc_features_sql(tables: dict[str, list[str]], *, temp: bool = False) -> str:
    """The ``doc_features`` view over ``docs`` and the feature ``tables`` (name -> columns)."""
    return (
        "-- documents joined with every feature table on doc_id\n"
        f"CREATE OR REPLACE {'TEMP VIEW' if temp else 'VIEW'} doc_features AS\n" + doc_features_select(tables) + ";\n"
    )
