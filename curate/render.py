"""Turn DuckDB results and summaries into Rich tables (the CLI) and Markdown tables (reports and artifacts)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import duckdb
from rich.table import Table

if TYPE_CHECKING:
    from curate.store import Store

# ![alt](name.png): a picture named relative to the report that holds it
_PICTURE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+\.png)\)")


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


def markdown_table(head: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None) -> list[str]:
    """A Markdown table's lines; ``align`` has one letter per column, ``l`` or ``r`` (default: all left)."""
    align = align or "l" * len(head)
    if len(align) != len(head):
        raise ValueError(f"align {align!r} must give one letter per column ({len(head)})")
    lines = ["| " + " | ".join(head) + " |", "|" + "".join("---:|" if a == "r" else "---|" for a in align)]
    return lines + ["| " + " | ".join(str(v) for v in r) + " |" for r in rows]


def markdown_rows(rows: list[dict[str, Any]], align: str | None = None) -> list[str]:
    """:func:`markdown_table` of dicts that share their keys (the first row's keys are the header)."""
    return markdown_table(list(rows[0]), [list(r.values()) for r in rows], align) if rows else []


def png_bytes(fig: Any) -> bytes:
    """A Matplotlib figure as PNG bytes (tight layout), closed afterwards. No Software/date metadata: the same
    inputs give the same bytes, so reports rebuild byte-identically."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def inline_pictures(markdown: str, store: Store, folder: str) -> str:
    """``markdown`` with each ``![alt](name.png)`` that names a PNG in the store's ``folder`` embedded as a
    ``data:`` URI, for Prefect artifacts: the Prefect UI fetches a relative picture from its own server, which
    has no such file (a broken image), while it shows an embedded one. Other pictures are left as they are."""

    def embed(m: re.Match[str]) -> str:
        alt, name = m.groups()
        if "://" in name or name.startswith(("/", "data:")) or ".." in name.split("/"):
            return m.group(0)
        png = store.read_bytes(f"{folder}/{name}")
        if png is None:
            return m.group(0)
        return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"

    return _PICTURE.sub(embed, markdown)
