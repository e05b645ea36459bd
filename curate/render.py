"""Turn DuckDB results and summaries into Rich tables (the CLI's only presentation code)."""

from __future__ import annotations

from typing import Any

import duckdb
from rich.table import Table


def _fmt(v: Any) -> str:
    if v is None:
        return "∅"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    s = str(v)
    return s if len(s) <= 80 else s[:77] + "…"


def relation_table(rel: duckdb.DuckDBPyRelation, title: str | None = None, limit: int = 200) -> Table:
    table = Table(title=title, header_style="bold cyan")
    types = [str(t) for t in rel.types]
    for name, t in zip(rel.columns, types):
        numeric = any(k in t for k in ("INT", "DOUBLE", "FLOAT", "DECIMAL", "HUGEINT"))
        table.add_column(name, justify="right" if numeric else "left")
    for row in rel.limit(limit).fetchall():
        table.add_row(*(_fmt(v) for v in row))
    return table


def rows_table(rows: list[dict[str, Any]], title: str | None = None) -> Table:
    table = Table(title=title, header_style="bold cyan")
    if not rows:
        return table
    for k, v in rows[0].items():
        table.add_column(k, justify="right" if isinstance(v, (int, float)) else "left")
    for r in rows:
        table.add_row(*(_fmt(v) for v in r.values()))
    return table
