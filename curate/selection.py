"""Selection over stored scores: percentile bands per domain (CCNet-style head / middle / tail).

Scorers only score; which band to keep is decided here, over the whole pool, so
the same scores serve "keep the middle half" (Dolma in *Perplexed by
Perplexity*), "keep the high half" (the Pile) or CCNet's head.

The ranking and cut logic lives once, in ``sql/perplexity_band.sql``: that file
runs as it is, and :func:`band_sql` replaces only its parameter and pool CTEs
(everything from ``ranked AS (`` on is shared).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb

from curate.errors import ConfigError
from curate.view_sql import SQL_DIR
from curate.store import Store

TEMPLATE_FILE = SQL_DIR / "perplexity_band.sql"
TOP_SHARE_FILE = SQL_DIR / "select_preselect_top.sql"
KEEP = ("low", "middle", "high")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def band_bounds(keep: str, fraction: float) -> tuple[float, float]:
    """(lo, hi) percentile bounds for keeping ``fraction`` of each group at its ``keep`` end."""
    if keep not in KEEP:
        raise ConfigError(f"keep must be one of {', '.join(KEEP)}, got {keep!r}")
    if not 0 < fraction <= 1:
        raise ConfigError(f"fraction must be in (0, 1], got {fraction}")
    if keep == "low":
        return 0.0, fraction
    if keep == "high":
        return 1.0 - fraction, 1.0
    return (1.0 - fraction) / 2, (1.0 + fraction) / 2


def _check_idents(*names: str | None) -> None:
    """Column and table names are pasted into SQL: only plain identifiers pass."""
    for ident in names:
        if ident and not _IDENT.match(ident):
            raise ConfigError(f"{ident!r} is not a plain column or table name")


def _shared_body(template: Path = TEMPLATE_FILE) -> str:
    text = template.read_text()
    at = text.find("ranked AS (")
    if at < 0:
        raise ConfigError(f"{template} lost its `ranked AS (` CTE, which {template.stem} selection reuses")
    return text[at:]


def _from_template(template: Path, params: str, size: str, column: str, per: str | None, where: str | None,
                   table: str) -> str:
    """A template's ``params`` and ``pool`` CTEs written for these arguments; the rest of the file reused."""
    _check_idents(column, table, per)
    grp = f'"{per}"' if per else "'all'"
    filt = f'"{column}" IS NOT NULL' + (f" AND ({where})" if where else "")
    head = (
        f"WITH params AS (SELECT {params}),\n"
        f"pool AS (\n    SELECT doc_id, {grp} AS grp, {size}, \"{column}\" AS score\n"
        f"    FROM {table}\n    WHERE {filt}\n),\n"
    )
    return head + _shared_body(template)


def band_sql(column: str, *, keep: str = "middle", fraction: float = 0.5, per: str | None = "domain",
             where: str | None = None, table: str = "doc_features") -> str:
    """The SQL of a percentile band over ``table`` (columns doc_id, n_bytes, ``column``, ``per``)."""
    lo, hi = band_bounds(keep, fraction)
    return _from_template(TEMPLATE_FILE, f"{lo!r} AS lo, {hi!r} AS hi", "n_bytes", column, per, where, table)


def percentile_band(con_or_store: duckdb.DuckDBPyConnection | Store | str, column: str = "ppl", *,
                    keep: str = "middle", fraction: float = 0.5, per: str | None = "domain",
                    where: str | None = None) -> duckdb.DuckDBPyRelation:
    """Documents whose ``column`` falls in a percentile band of their ``per`` group (None: one pool).

    Returns a DuckDB relation (doc_id, domain, n_bytes, score, percentile); ``keep`` is
    ``low`` / ``middle`` / ``high`` and ``fraction`` the share of each group kept
    (exactly floor(hi*n) - floor(lo*n) documents of a group of n).

    >>> percentile_band(store, "ppl", keep="middle", fraction=0.5).df()   # doctest: +SKIP
    """
    con = _connection(con_or_store)
    return con.sql(band_sql(column, keep=keep, fraction=fraction, per=per, where=where))


def top_share_sql(column: str = "preselect_score", *, share: float = 0.1, per: str | None = None,
                  where: str | None = None, table: str = "doc_features") -> str:
    """The SQL keeping the best-``column`` documents up to ``share`` of the characters (template:
    ``sql/select_preselect_top.sql``, whose cut logic from ``ranked AS (`` on is reused verbatim)."""
    if not 0 < share <= 1:
        raise ConfigError(f"share must be in (0, 1], got {share}")
    return _from_template(TOP_SHARE_FILE, f"{share!r} AS share", "length(text) AS n_chars", column, per, where, table)


def top_share(con_or_store: duckdb.DuckDBPyConnection | Store | str, column: str = "preselect_score", *,
              share: float = 0.1, per: str | None = None, where: str | None = None) -> duckdb.DuckDBPyRelation:
    """The top ``share`` of the pool *by characters* ranked by ``column`` (highest first): PreSelect's cut.

    The threshold is computed over the whole pool (or each ``per`` group): documents are taken
    best first until their characters reach ``share`` of the pool's, the one crossing the line
    included. Returns a relation (doc_id, grp, n_chars, score, char_share).

    >>> top_share(store, "preselect_score", share=0.1).df()   # doctest: +SKIP
    """
    return _connection(con_or_store).sql(top_share_sql(column, share=share, per=per, where=where))


def top_share_doc_ids(con_or_store: Any, column: str = "preselect_score", **kw: Any) -> list[str]:
    """:func:`top_share` as a list of doc_ids."""
    return [r[0] for r in top_share(con_or_store, column, **kw).fetchall()]


def band_doc_ids(con_or_store: Any, column: str = "ppl", **kw: Any) -> list[str]:
    """:func:`percentile_band` as a list of doc_ids."""
    return [r[0] for r in percentile_band(con_or_store, column, **kw).fetchall()]


def _connection(con_or_store: duckdb.DuckDBPyConnection | Store | str) -> duckdb.DuckDBPyConnection:
    if isinstance(con_or_store, duckdb.DuckDBPyConnection):
        return con_or_store
    from curate.query import connect

    return connect(con_or_store)
