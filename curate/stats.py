"""Per-corpus, per-domain totals and quarantine counts, computed by DuckDB from the store."""

from __future__ import annotations

import duckdb

BYTES_PER_TOKEN_ESTIMATE = 4.0  # rough BPE ratio for English-heavy text; the bytes tokenizer is exact


def domain_table(con: duckdb.DuckDBPyConnection, corpus: str | None = None) -> duckdb.DuckDBPyRelation:
    """docs, MB, mean bytes and estimated tokens per (corpus, domain)."""
    where = "WHERE corpus = $corpus" if corpus else ""
    return con.sql(
        f"""
        SELECT corpus, coalesce(domain, '(none)') AS domain, count(*) AS docs,
               round(sum(n_bytes) / 1e6, 2) AS mb, round(avg(n_bytes)) AS mean_bytes,
               round(sum(n_bytes) / {BYTES_PER_TOKEN_ESTIMATE}) :: BIGINT AS est_tokens
        FROM docs {where}
        GROUP BY ALL ORDER BY corpus, docs DESC
        """,
        params={"corpus": corpus} if corpus else None,
    )


def quarantine_table(con: duckdb.DuckDBPyConnection, corpus: str | None = None) -> duckdb.DuckDBPyRelation:
    where = "WHERE corpus = $corpus" if corpus else ""
    return con.sql(
        f"SELECT corpus, reason, sum(count) AS records FROM quarantine {where} GROUP BY ALL ORDER BY corpus, records DESC",
        params={"corpus": corpus} if corpus else None,
    )
