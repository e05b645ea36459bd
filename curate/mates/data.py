"""What one MATES stage reads from the store: probes, a fresh candidate pool, and the reference set.

Candidates (``candidates_sql``: doc_id, text, optional domain) are split by a
stable hash of ``doc_id`` (``md5_number``, the same in every DuckDB version and
reproducible in Python): buckets below ``probe_percent`` form the probe slice,
the rest the selection pool, so probes never overlap any stage's pool. With
``pool_splits`` > 1 the pool is cut again by another hash, and stage ``k``
selects from split ``k % pool_splits``: each stage a fresh pool, as in MATES.
A user's own ``probe_sql`` is checked against the pool and refused on overlap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from curate.errors import ConfigError

SLICE_MOD = 100
PROBE_SALT = "#mates-probe-slice"
SPLIT_SALT = "#mates-pool-split"


def slice_expr(salt: str, mod: int) -> str:
    """A stable bucket of ``doc_id`` in ``[0, mod)``."""
    return f"(md5_number(doc_id || '{salt}') % {int(mod)})"


def default_candidates_sql(corpora: list[str]) -> str:
    """Every corpus but ``heldout`` (the reference set) when there is one."""
    where = " WHERE corpus <> 'heldout'" if "heldout" in corpora else ""
    return f"SELECT doc_id, text, domain FROM docs{where}"


def default_reference_sql(corpora: list[str]) -> str:
    """Corpus ``heldout``; without one the reference set must be named."""
    if "heldout" not in corpora:
        raise ConfigError("no 'heldout' corpus in the store to serve as the MATES reference set: pass reference_sql "
                          "(a query with a text column, e.g. SELECT text FROM docs WHERE domain = 'math')")
    return "SELECT text FROM docs WHERE corpus = 'heldout'"


@dataclass
class StageData:
    """Probes (doc_id, text, domain), the stage's pool (doc_id, domain) and reference texts, plus the rules."""

    probes: pa.Table
    pool: pa.Table
    reference_texts: list[str]
    rules: dict[str, Any] = field(default_factory=dict)


def _columns(con: duckdb.DuckDBPyConnection, sql: str, what: str) -> list[str]:
    try:
        return con.sql(f"SELECT * FROM ({sql}) LIMIT 0").columns
    except duckdb.Error as exc:
        raise ConfigError(f"{what} does not run: {exc}") from None


def _with_domain(con: duckdb.DuckDBPyConnection, sql: str, what: str) -> str:
    cols = _columns(con, sql, what)
    if not {"doc_id", "text"} <= set(cols):
        raise ConfigError(f"{what} must return doc_id and text columns (got {', '.join(cols)})")
    domain = "CAST(domain AS VARCHAR)" if "domain" in cols else "NULL::VARCHAR"
    return f"SELECT doc_id, text, {domain} AS domain FROM ({sql}) WHERE text IS NOT NULL AND length(text) > 0"


def stage_data(con: duckdb.DuckDBPyConnection, *, stage: int, candidates_sql: str, reference_sql: str,
               probes: int, probe_percent: int = 10, pool_splits: int = 1, probe_sql: str | None = None,
               reference_docs: int = 64, seed: int = 0) -> StageData:
    """Sample the stage's probes and reference texts and list its pool (see the module docstring)."""
    if not 0 < probe_percent < SLICE_MOD:
        raise ConfigError(f"probe_percent must be in (0, {SLICE_MOD}), got {probe_percent}")
    if pool_splits < 1 or probes < 1 or reference_docs < 1:
        raise ConfigError("pool_splits, probes and reference_docs must be positive")
    cand = _with_domain(con, candidates_sql, "candidates_sql")
    in_probe_slice = f"{slice_expr(PROBE_SALT, SLICE_MOD)} < {int(probe_percent)}"
    pool_where = f"NOT {in_probe_slice}"
    if pool_splits > 1:
        pool_where += f" AND {slice_expr(SPLIT_SALT, pool_splits)} = {stage % pool_splits}"
    pool = con.sql(f"SELECT doc_id, domain FROM ({cand}) WHERE {pool_where} ORDER BY doc_id").to_arrow_table()
    probe_src = _with_domain(con, probe_sql, "probe_sql") if probe_sql else f"SELECT * FROM ({cand}) WHERE {in_probe_slice}"
    # a fresh, seeded sample of probes each stage: the model changed, so the same docs may be probed again
    order = f"md5(doc_id || '#mates-probe-{int(seed)}-{int(stage)}')"
    probe_tbl = con.sql(f"SELECT doc_id, text, domain FROM ({probe_src}) ORDER BY {order} LIMIT {int(probes)}").to_arrow_table()
    if probe_tbl.num_rows < 2:
        raise ConfigError(f"only {probe_tbl.num_rows} probe document(s) available: widen probe_percent or probe_sql")
    con.register("_mates_probe_ids", probe_tbl.select(["doc_id"]))
    con.register("_mates_pool_ids", pool.select(["doc_id"]))
    overlap = con.sql("SELECT count(*) FROM _mates_probe_ids JOIN _mates_pool_ids USING (doc_id)").fetchall()[0][0]
    con.unregister("_mates_probe_ids")
    con.unregister("_mates_pool_ids")
    if overlap:
        raise ConfigError(f"{overlap} probe document(s) are also in the selection pool: probes must come from a "
                          "held-out slice (drop probe_sql to use the hashed probe slice)")
    if pool.num_rows == 0:
        raise ConfigError("the stage's candidate pool is empty: check candidates_sql and pool_splits")
    ref_cols = _columns(con, reference_sql, "reference_sql")
    if "text" not in ref_cols:
        raise ConfigError(f"reference_sql must return a text column (got {', '.join(ref_cols)})")
    ref_key = "md5(text || '#mates-reference')"
    reference = [r[0] for r in con.sql(f"SELECT text FROM ({reference_sql}) WHERE text IS NOT NULL AND length(text) > 0 "
                                       f"ORDER BY {ref_key} LIMIT {int(reference_docs)}").fetchall()]
    rules = {"candidates_sql": candidates_sql, "reference_sql": reference_sql, "probe_sql": probe_sql,
             "probe_slice": in_probe_slice, "pool_where": pool_where, "probe_percent": probe_percent,
             "pool_splits": pool_splits, "pool_split": stage % pool_splits, "probe_pool_overlap": int(overlap),
             "probes_requested": probes, "probes": probe_tbl.num_rows, "pool_docs": pool.num_rows,
             "reference_docs": len(reference)}
    return StageData(probe_tbl, pool, reference, rules)
