"""The selection methods compared, each as SQL over the store, and the equal-token draw every run trains on.

A method keeps a subset of the pool by its own rule, written with the same SQL the
rest of curate uses (``sql/``, :mod:`curate.selection`); a run then *draws* the
budget from that subset: documents in a seeded hash order until their tokens (UTF-8
bytes plus one end-of-document token each) reach the budget, the document crossing
it included. So every method trains on the same number of tokens, within one
document, with no repetition; ``random`` draws from the whole pool and its longer
run's prefix is exactly a shorter random run.

- ``preselect``: the top 10% of the pool's characters by ``preselect_score``
  (``sql/select_preselect_top.sql``, threshold over the whole pool);
- ``ppl-middle``: the middle half of each domain by reference-LM bits per byte
  (``sql/perplexity_band.sql``);
- ``el2n-hard`` / ``el2n-easy``: the high / low half of each domain by EL2N
  (``sql/el2n_keep_hard.sql`` / ``sql/el2n_keep_easy.sql``);
- ``mates``: staged and model-aware, chosen while training (:mod:`.staged`);
- ``two-phase``: a :mod:`curate.mixture` plan with the pool's own domain shares, then
  a final phase that triples the shares of math, code and encyclopedic text.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from curate.errors import ConfigError
from curate.selection import band_sql, top_share_sql

DRAW_SALT = "#experiment-draw-"
#: two-phase: the final phase multiplies these domains' shares (then renormalises)
UPSAMPLE = {"math": 3.0, "code": 3.0, "encyclopedic": 3.0}


@dataclass(frozen=True)
class Method:
    """One way of choosing training data. ``kind``: sql (a kept subset), mates (staged) or mixture (phases)."""

    name: str
    kind: str
    label: str  # what it keeps, in a line
    needs: tuple[tuple[str, str], ...] = ()  # (feature table, column) it reads
    keep_sql: Callable[[str], str] | None = None  # pool condition over doc_features -> SQL with doc_id

    def sql(self, where: str) -> str:
        """The SQL of the documents this method keeps from the pool ``where`` selects (static methods only)."""
        if self.keep_sql is None:
            raise ConfigError(f"method {self.name!r} chooses while training: it has no static selection SQL")
        return self.keep_sql(where)


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("random", "sql", "a uniform draw from the whole pool",
           keep_sql=lambda where: f"SELECT doc_id FROM docs WHERE {where}"),
    Method("preselect", "sql", "top 10% of the pool's characters by preselect_score",
           (("preselect", "preselect_score"),),
           lambda where: top_share_sql("preselect_score", share=0.1, where=where)),
    Method("ppl-middle", "sql", "middle 50% of each domain by reference-LM bits per byte",
           (("perplexity", "bits_per_byte"),),
           lambda where: band_sql("bits_per_byte", keep="middle", fraction=0.5, where=where)),
    Method("el2n-hard", "sql", "hardest 50% of each domain by EL2N", (("el2n", "el2n"),),
           lambda where: band_sql("el2n", keep="high", fraction=0.5, where=where)),
    Method("el2n-easy", "sql", "easiest 50% of each domain by EL2N", (("el2n", "el2n"),),
           lambda where: band_sql("el2n", keep="low", fraction=0.5, where=where)),
    Method("mates", "mates", "random for the first stage, then 20% of a fresh pool per stage by MATES "
                             "(live model, ridge influence, Gumbel-top-k)"),
    Method("two-phase", "mixture", "the pool's domain shares, then the last 20% with math, code and "
                                   "encyclopedic upsampled 3x"),
)}


def parse_methods(names: str | list[str] | None) -> list[str]:
    """Method names in the order given (``random`` added first when missing); unknown names are refused."""
    if names is None:
        return list(METHODS)
    items = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    unknown = [n for n in items if n not in METHODS]
    if unknown:
        raise ConfigError(f"unknown method(s) {', '.join(map(repr, unknown))}: choose from {', '.join(METHODS)}")
    if len(set(items)) != len(items):
        raise ConfigError(f"a method is listed twice: {items}")
    return items if "random" in items else ["random", *items]  # the multiplier is measured against random


def pool_where(pool: str) -> str:
    """The pool condition (over ``docs`` / ``doc_features``)."""
    return f"corpus = '{pool.replace(chr(39), chr(39) * 2)}'"


def draw(con: duckdb.DuckDBPyConnection, keep_sql: str, budget: int, *, seed: int, what: str,
         exclude: pa.Table | None = None) -> pa.Table:
    """The kept documents in a seeded hash order, up to the one whose tokens reach ``budget``.

    Returns (doc_id, domain, n_tokens, cum_tokens) in training order; ``n_tokens`` is bytes + 1
    (the end-of-document token the packer adds). ``exclude`` (a table with doc_id): never drawn.
    Refused when the kept documents hold fewer tokens than the budget.
    """
    skip = ""
    if exclude is not None and exclude.num_rows:
        con.register("_exp_exclude", exclude.select(["doc_id"]))
        skip = "WHERE doc_id NOT IN (SELECT doc_id FROM _exp_exclude)"
    try:
        table = con.sql(f"""
            WITH kept AS (SELECT DISTINCT doc_id FROM ({keep_sql}) AS q),
            d AS (SELECT doc_id, CAST(domain AS VARCHAR) AS domain, n_bytes + 1 AS n_tokens,
                         md5(doc_id || '{DRAW_SALT}{int(seed)}') AS k
                  FROM docs JOIN kept USING (doc_id) {skip}),
            r AS (SELECT *, sum(n_tokens) OVER (ORDER BY k, doc_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
                            AS cum_tokens, sum(n_tokens) OVER () AS supply FROM d)
            SELECT doc_id, domain, n_tokens, cum_tokens, supply FROM r
            WHERE cum_tokens - n_tokens < {int(budget)} ORDER BY cum_tokens
        """).to_arrow_table()
    except duckdb.Error as exc:
        raise ConfigError(f"{what}: the selection SQL failed in DuckDB: {str(exc).splitlines()[0]}") from None
    finally:
        if skip:
            con.unregister("_exp_exclude")
    supply = table.column("supply")[0].as_py() if table.num_rows else 0
    if supply < budget:
        raise ConfigError(f"{what} keeps {supply:,} tokens, fewer than the budget of {budget:,}: lower the budget "
                          "(--tokens) or use a larger pool")
    return table.drop_columns(["supply"])


def two_phase_plan(store: Any, con: duckdb.DuckDBPyConnection, pool: str, budget: int, *, seed: int,
                   anneal_fraction: float) -> tuple[pa.Table, dict[str, Any]]:
    """The two-phase draw through :func:`curate.mixture.plan_mixture`: (draw table with a phase column, spec)."""
    from curate.mixture import load_spec, plan_mixture
    from curate.mixture.plan import allocate, shortfall_message

    rows = con.sql(f"SELECT CAST(domain AS VARCHAR), sum(n_bytes) FROM docs WHERE {pool_where(pool)} "
                   "AND domain IS NOT NULL GROUP BY 1 ORDER BY 1").fetchall()
    total = sum(n for _, n in rows) or 1
    shares = {d: n / total for d, n in rows}
    up = {d: w * UPSAMPLE.get(d, 1.0) for d, w in shares.items()}
    anneal = {d: w / sum(up.values()) for d, w in up.items()}
    spec = {"name": "experiment-two-phase", "tokens": int(budget), "seed": int(seed), "max_epochs": 1,
            "corpora": [pool], "weights": shares,
            "phases": [{"name": "main", "fraction": 1 - anneal_fraction},
                       {"name": "anneal", "fraction": anneal_fraction, "weights": anneal}]}
    # each (phase, domain) cell lands within one document of its target, so a phase can miss its share of the
    # budget by a few documents either way: plan a little more where a phase falls short, then cut each phase
    # at its share (counting the end-of-document token the stream adds)
    shares_of = allocate(int(budget), {str(i): p["fraction"] for i, p in enumerate(spec["phases"])})
    for _ in range(6):
        sp = load_spec(spec)
        plan = plan_mixture(store, sp, con=con)
        if plan.shortfalls:
            raise ConfigError(shortfall_message(sp, plan.shortfalls))
        t = con.sql(plan.ordered_sql("doc_id, CAST(domain AS VARCHAR) AS domain, n_tokens, phase")).to_arrow_table()
        phase = np.array(t.column("phase").to_pylist(), dtype=object)
        n_tokens = t.column("n_tokens").to_numpy().astype(np.int64) + 1
        keep, short = _cut_phases(phase, n_tokens, spec["phases"], shares_of)
        if not short:
            break
        spec["tokens"] += short
    else:
        raise ConfigError(f"two-phase: the mixture plan stays {short:,} tokens short of the budget {budget:,}")
    idx = np.flatnonzero(keep)
    table = pa.table({"doc_id": t.column("doc_id").take(idx), "domain": t.column("domain").take(idx),
                      "n_tokens": n_tokens[idx], "cum_tokens": np.cumsum(n_tokens[idx]), "phase": phase[idx].tolist()})
    return table, spec


def _cut_phases(phase: np.ndarray, n_tokens: np.ndarray, phases: list[dict[str, Any]],
                shares: dict[str, int]) -> tuple[np.ndarray, int]:
    """(rows kept: each phase up to the document reaching its share, extra tokens to plan when one falls short)."""
    keep = np.zeros(len(phase), dtype=bool)
    short = 0
    for i, ph in enumerate(phases):
        rows = np.flatnonzero(phase == ph["name"])
        cum = np.cumsum(n_tokens[rows])
        keep[rows[cum - n_tokens[rows] < shares[str(i)]]] = True
        missing = max(0, shares[str(i)] - int(cum[-1] if len(cum) else 0))
        short = max(short, math.ceil(missing / ph["fraction"]))  # the phase gets its fraction of what is added
    return keep, short


def token_shares(table: pa.Table, column: str = "domain") -> dict[str, float]:
    """Share of a draw's tokens per value of ``column`` (domain, phase), in order of first appearance."""
    vals = np.array([str(v) for v in table.column(column).to_pylist()], dtype=object)
    toks = table.column("n_tokens").to_numpy()
    total = float(toks.sum()) or 1.0
    return {str(v): round(float(toks[vals == v].sum()) / total, 4) for v in dict.fromkeys(vals)}
