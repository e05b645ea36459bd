"""Targets: the text a selection is judged on, split into an evaluation half and a reference half.

A target is a set of documents in the store. Half of them (by a hash of doc_id) is
the evaluation set every run is measured on; the other half is the *reference* that
target-aware methods may look at (PreSelect ranks its family on it, MATES probes
against it, the closest-to-target baseline trains its LM on it, the end-of-training
phase upsamples its domains), so no method selects with the documents it is judged on.

Built in: ``mixed`` (the held-out split of the pool's own mix: in-distribution, where
a uniform draw is close to optimal), ``math-code`` and ``prose`` (encyclopedic + books):
targets that differ from the pool. Any corpus in the store (``corpus:NAME``, e.g. a
benchmark's text ingested with ``curate ingest``) or query (``sql:SELECT doc_id ...``)
is a target too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import duckdb

from curate.errors import ConfigError

HELDOUT = "heldout"
SPLIT_SALT = "#experiment-target"


@dataclass(frozen=True)
class Target:
    """A target: its documents (SQL returning doc_id) and, when known, the pool domains it is made of."""

    name: str
    label: str
    sql: str
    domains: tuple[str, ...] | None = None  # None: every domain (in-distribution) or unknown

    def half(self, which: int) -> str:
        """SQL of the evaluation (0) or reference (1) half."""
        return (f"SELECT doc_id FROM ({self.sql}) AS target "
                f"WHERE md5_number(doc_id || '{SPLIT_SALT}') % 2 = {int(which)}")

    @property
    def eval_sql(self) -> str:
        return self.half(0)

    @property
    def reference_sql(self) -> str:
        """Reference documents with their text (what MATES' reference set and the target LM read)."""
        return f"SELECT doc_id, text FROM docs WHERE doc_id IN ({self.half(1)})"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "sql": self.sql,
                "domains": list(self.domains) if self.domains else None}


def _heldout(domains: tuple[str, ...] | None) -> str:
    where = f" AND CAST(domain AS VARCHAR) IN ({', '.join(repr(d) for d in domains)})" if domains else ""
    return f"SELECT doc_id FROM docs WHERE corpus = '{HELDOUT}'{where}"


BUILTIN: dict[str, Target] = {t.name: t for t in (
    Target("mixed", "held-out split of the pool's own mix (in-distribution)", _heldout(None)),
    Target("math-code", "held-out math and code", _heldout(("math", "code")), ("math", "code")),
    Target("prose", "held-out English prose (encyclopedic and books)", _heldout(("encyclopedic", "books")),
           ("encyclopedic", "books")),
)}
DEFAULT_TARGETS = tuple(BUILTIN)


def target_names(names: str | list[str] | None) -> list[str]:
    """The target names asked for (default: the built-in ones), refused at once when one cannot be a target."""
    items = list(DEFAULT_TARGETS) if names is None else \
        [n.strip() for n in (names.split(",") if isinstance(names, str) and not names.startswith("sql:") else
                             [names] if isinstance(names, str) else names) if n.strip()]
    if not items:
        raise ConfigError("no target given: name one of " + ", ".join(BUILTIN) + ", corpus:NAME or sql:QUERY")
    for item in items:
        if item not in BUILTIN and not item.startswith(("corpus:", "sql:")):
            raise ConfigError(f"unknown target {item!r}: choose from {', '.join(BUILTIN)}, corpus:NAME (a corpus in "
                              "the store) or sql:SELECT doc_id FROM docs WHERE ...")
    if len(set(items)) != len(items):
        raise ConfigError(f"a target is listed twice: {items}")
    return items


def parse_targets(con: duckdb.DuckDBPyConnection, names: str | list[str] | None, pool: str) -> list[Target]:
    """Targets by name: built-in names, ``corpus:NAME`` or ``sql:SELECT doc_id ...``; each checked against the
    store (it must hold at least 20 documents, none of them in the pool) before any training."""
    items = target_names(names)
    pool_domains = {r[0] for r in con.sql(f"SELECT DISTINCT CAST(domain AS VARCHAR) FROM docs "
                                          f"WHERE corpus = '{pool}'").fetchall()}
    out = []
    for item in items:
        if item in BUILTIN:
            target = BUILTIN[item]
        elif item.startswith("corpus:"):
            corpus = item.removeprefix("corpus:")
            target = Target(f"corpus-{corpus}", f"corpus {corpus!r}",
                            f"SELECT doc_id FROM docs WHERE corpus = '{corpus.replace(chr(39), chr(39) * 2)}'")
        else:
            sql = item.removeprefix("sql:").strip()
            target = Target(f"sql-{hashlib.sha256(sql.encode()).hexdigest()[:8]}", f"query {sql}", sql)
        try:
            n, in_pool = con.sql(f"SELECT count(DISTINCT doc_id), count(DISTINCT doc_id) FILTER (WHERE corpus = "
                                 f"'{pool}') FROM docs WHERE doc_id IN ({target.sql})").fetchall()[0]
        except duckdb.Error as exc:
            raise ConfigError(f"target {item!r}: the query failed in DuckDB: {str(exc).splitlines()[0]}") from None
        if n < 20:
            raise ConfigError(f"target {item!r} has {n} document(s) in the store: it needs at least 20 (half are "
                              "evaluated on, half are the reference target-aware methods see)")
        if in_pool:
            raise ConfigError(f"target {item!r}: {in_pool} of its documents are in the pool corpus {pool!r}: "
                              "a target must be text the methods cannot select")
        if target.domains is None and item.startswith(("corpus:", "sql:")):
            doms = tuple(sorted(r[0] for r in con.sql(
                f"SELECT DISTINCT CAST(domain AS VARCHAR) FROM docs WHERE doc_id IN ({target.sql})").fetchall()
                if r[0] is not None))
            if doms and set(doms) <= pool_domains and set(doms) != pool_domains:
                target = Target(target.name, target.label, target.sql, doms)
        out.append(target)
    return out
