"""Which documents PreSelect reads: the pool it samples, the target set it ranks the family on.

Both are SQL over the store's views (any DuckDB source works: ``read_parquet('t.parquet')``).
Texts are cut to ``max_chars`` characters here, once, so every model scores exactly the same
characters and bits per character compare across tokenizers.
"""

from __future__ import annotations

from typing import Any

from curate.errors import ConfigError
from curate.store import Store

HELDOUT_TARGET = "SELECT text FROM docs WHERE corpus = 'heldout'"
TARGET_SALT = "#preselect-target"  # without a 'heldout' corpus, 1 in TARGET_MOD pool documents is the target set
TARGET_MOD = 20
SAMPLE_SALT = "#preselect-sample"


def resolve_sets(st: Store, pool_sql: str | None, target_sql: str | None) -> tuple[str, str, str]:
    """(pool SQL, target SQL, how the target was chosen).

    The target set defaults to corpus ``heldout`` (then excluded from the pool); without
    one, a hashed 1/20 of the pool is set aside as target and never sampled or trained on.
    """
    has_heldout = "heldout" in st.corpora()
    pool = pool_sql or ("SELECT doc_id, text, domain FROM docs" + (" WHERE corpus <> 'heldout'" if has_heldout else ""))
    if target_sql:
        return pool, target_sql, "target_sql"
    if has_heldout:
        return pool, HELDOUT_TARGET, "corpus 'heldout'"
    key = f"hash(doc_id || '{TARGET_SALT}') % {TARGET_MOD}"
    return (f"SELECT * FROM ({pool}) AS p WHERE {key} <> 0", f"SELECT text FROM ({pool}) AS p WHERE {key} = 0",
            f"hashed 1/{TARGET_MOD} of the pool")


def _columns(con: Any, sql: str, what: str) -> list[str]:
    import duckdb

    try:
        return con.sql(f"SELECT * FROM ({sql}) AS q LIMIT 0").columns
    except duckdb.Error as exc:
        raise ConfigError(f"{what} failed in DuckDB: {exc}") from None


def load_texts(con: Any, pool_sql: str, target_sql: str, *, sample_docs: int, target_docs: int, max_chars: int,
               seed: int) -> tuple[list[str], dict[str, list[Any]]]:
    """(target texts, sample columns doc_id/domain/text), texts cut to ``max_chars`` characters, in a seeded order."""
    pool_cols = _columns(con, pool_sql, "pool SQL")
    if not {"doc_id", "text"} <= set(pool_cols):
        raise ConfigError(f"the pool SQL must return doc_id and text (domain optional); it returns {pool_cols}")
    if "text" not in _columns(con, target_sql, "target SQL"):
        raise ConfigError("the target SQL must return a text column (any DuckDB source works, e.g. "
                          "SELECT text FROM read_parquet('target.parquet'))")
    domain = "CAST(domain AS VARCHAR)" if "domain" in pool_cols else "NULL::VARCHAR"
    nonempty = "text IS NOT NULL AND length(trim(text)) > 0"
    rows = con.execute(
        f"SELECT doc_id, {domain} AS domain, left(text, {int(max_chars)}) AS text FROM ({pool_sql}) AS p "
        f"WHERE {nonempty} ORDER BY hash(doc_id || '{SAMPLE_SALT}{int(seed)}'), doc_id LIMIT {int(sample_docs)}"
    ).fetchall()
    target = [r[0] for r in con.execute(
        f"SELECT left(text, {int(max_chars)}) AS text FROM ({target_sql}) AS t WHERE {nonempty} "
        f"ORDER BY hash(text || '{TARGET_SALT}'), text LIMIT {int(target_docs)}").fetchall()]
    if not target:
        raise ConfigError(f"the target SQL returned no text: {target_sql}")
    if not rows:
        raise ConfigError(f"the pool SQL returned no documents: {pool_sql}")
    return target, {"doc_id": [r[0] for r in rows], "domain": [r[1] for r in rows], "text": [r[2] for r in rows]}
