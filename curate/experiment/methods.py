"""The selection methods compared, each as the documents it keeps (SQL over the store) for a target.

A method keeps a subset of the pool by its own rule, written with the same SQL the
rest of curate uses (``sql/``, :mod:`curate.selection`); a run then trains on
windows drawn uniformly from that subset (:mod:`.windows`). Target-aware methods
read the target's *reference* half only.

- ``random``: the whole pool (the baseline every multiplier is measured against);
- ``oracle``: only the target's own domains (the in-domain bound; the same as random
  for the in-distribution target);
- ``preselect``: the top share (the scale's ``keep_share``) of the pool's characters by the target's
  PreSelect score (a family of LMs trained on different domain mixtures, ranked on the target);
- ``preselect-strat``: the same score, the top share of each domain's characters (keeps the pool's mix);
- ``closest``: Moore-Lewis / DSIR-style, the share of the pool's characters a micro LM trained on
  the target's reference text finds most likely relative to the general reference LM;
- ``ppl-middle``: the middle half of each domain by the general reference LM's bits per byte;
- ``el2n-hard`` / ``el2n-easy``: the high / low half of each domain by EL2N;
- ``mates``: staged and model-aware, chosen while training against the target's reference (:mod:`.staged`);
- ``two-phase``: random, then an end-of-training phase (the cooldown's share of the budget) with the
  target's domains upsampled 3x (math, code and encyclopedic text for the in-distribution target).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb

from curate.errors import ConfigError
from curate.experiment.targets import Target
from curate.experiment.windows import Component, Phase
from curate.selection import band_sql, top_share_sql

#: two-phase: the final phase multiplies these domains' shares (then renormalises); a target's own domains
#: replace them when the target names its domains
UPSAMPLE_DEFAULT = ("math", "code", "encyclopedic")
UPSAMPLE_FACTOR = 3.0


def pool_where(pool: str) -> str:
    """The pool condition (over ``docs`` / ``doc_features``)."""
    return f"corpus = '{pool.replace(chr(39), chr(39) * 2)}'"


def score_view(kind: str, target: Target) -> str:
    """The name of the DuckDB view holding a target's ``kind`` score (preselect, closest) over the pool."""
    return f"exp_{kind}_{re.sub(r'[^A-Za-z0-9]', '_', target.name)}"


@dataclass(frozen=True)
class Method:
    """One way of choosing training data.

    ``kind``: ``windows`` (fixed phases of kept documents) or ``mates`` (chosen while training).
    ``per_target``: the method reads the target (so it runs once per target; the others run once and are
    evaluated on every target). ``needs``: (feature table, column) it reads; ``scores``: per-target score
    views it reads (made by :mod:`.prepare`).
    """

    name: str
    kind: str
    label: str
    per_target: bool
    build: Callable[[str, Target, dict[str, Any], float], list[Phase]] | None = None
    needs: tuple[tuple[str, str], ...] = ()
    scores: tuple[str, ...] = ()
    needs_domains: bool = False  # only for targets whose domains are known
    keeps_share: bool = False  # keeps a top share of the pool (the scale's ``keep_share``; ``{share}`` in label)

    def phases(self, pool: str, target: Target, pool_shares: dict[str, float], share: float) -> list[Phase]:
        if self.build is None:
            raise ConfigError(f"method {self.name!r} chooses while training: it has no fixed phases")
        return self.build(pool, target, pool_shares, share)

    def describe(self, share: float) -> str:
        """The label with the kept share filled in."""
        return self.label.replace("{share}", f"{share:.0%}")


def _one(sql: str, label: str) -> list[Phase]:
    return [Phase("main", 1.0, (Component(sql, 1.0, label),))]


def _pool_sql(pool: str) -> str:
    return f"SELECT doc_id FROM docs WHERE {pool_where(pool)}"


def _domains(pool: str, domains: tuple[str, ...]) -> str:
    return f"{_pool_sql(pool)} AND CAST(domain AS VARCHAR) IN ({', '.join(repr(d) for d in domains)})"


def _top(view: str, column: str, per: str | None, share: float) -> str:
    return top_share_sql(column, share=share, per=per, table=view)


def two_phase_weights(pool_shares: dict[str, float], target: Target) -> dict[str, float]:
    """The end-of-training phase's domain weights: the pool's shares with the target's domains upsampled."""
    up = set(target.domains or UPSAMPLE_DEFAULT)
    raw = {d: s * (UPSAMPLE_FACTOR if d in up else 1.0) for d, s in pool_shares.items() if s > 0}
    total = sum(raw.values())
    return {d: w / total for d, w in sorted(raw.items())}


def _two_phase(pool: str, target: Target, pool_shares: dict[str, float], anneal: float) -> list[Phase]:
    comps = tuple(Component(_domains(pool, (d,)), w, d) for d, w in two_phase_weights(pool_shares, target).items())
    return [Phase("main", 1 - anneal, (Component(_pool_sql(pool), 1.0, "pool"),)), Phase("anneal", anneal, comps)]


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("random", "windows", "uniform windows from the whole pool", False,
           lambda pool, t, s, k: _one(_pool_sql(pool), "pool")),
    Method("oracle", "windows", "only the target's own domains (the in-domain bound)", True,
           lambda pool, t, s, k: _one(_domains(pool, t.domains or ()), "oracle"), needs_domains=True),
    Method("preselect", "windows", "top {share} of the pool's characters by the target's PreSelect score", True,
           lambda pool, t, s, k: _one(_top(score_view("preselect", t), "preselect_score", None, k), "preselect"),
           scores=("preselect",), keeps_share=True),
    Method("preselect-strat", "windows", "top {share} of each domain's characters by the target's PreSelect score",
           True, lambda pool, t, s, k: _one(_top(score_view("preselect", t), "preselect_score", "domain", k),
                                            "preselect-strat"), scores=("preselect",), keeps_share=True),
    Method("closest", "windows", "{share} of the pool's characters most likely under a target LM relative to the "
                                 "general LM (Moore-Lewis)", True,
           lambda pool, t, s, k: _one(_top(score_view("closest", t), "closest_score", None, k), "closest"),
           needs=(("perplexity", "bits_per_byte"),), scores=("closest",), keeps_share=True),
    Method("ppl-middle", "windows", "middle 50% of each domain by reference-LM bits per byte", False,
           lambda pool, t, s, k: _one(band_sql("bits_per_byte", keep="middle", fraction=0.5, where=pool_where(pool)),
                                   "ppl-middle"), needs=(("perplexity", "bits_per_byte"),)),
    Method("el2n-hard", "windows", "hardest 50% of each domain by EL2N", False,
           lambda pool, t, s, k: _one(band_sql("el2n", keep="high", fraction=0.5, where=pool_where(pool)), "el2n-hard"),
           needs=(("el2n", "el2n"),)),
    Method("el2n-easy", "windows", "easiest 50% of each domain by EL2N", False,
           lambda pool, t, s, k: _one(band_sql("el2n", keep="low", fraction=0.5, where=pool_where(pool)), "el2n-easy"),
           needs=(("el2n", "el2n"),)),
    Method("mates", "mates", "random for the first stage, then 20% of a fresh slice of the pool per stage by "
                             "MATES against the target's reference (live model, ridge influence, Gumbel-top-k)",
           True),
    Method("two-phase", "windows", "random, then the last 20% (the cooldown) with the target's domains "
                                   "upsampled 3x", True, None),
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


def method_phases(name: str, pool: str, target: Target, pool_shares: dict[str, float], anneal: float,
                  keep_share: float) -> list[Phase]:
    """The phases a ``windows`` method trains on for ``target`` (``keep_share``: what top-share methods keep)."""
    if name == "two-phase":
        return _two_phase(pool, target, pool_shares, anneal)
    return METHODS[name].phases(pool, target, pool_shares, keep_share)


def pool_domain_shares(con: duckdb.DuckDBPyConnection, pool: str, exclude: str | None = None) -> dict[str, float]:
    """Each domain's share of the pool's tokens (what a uniform draw trains on)."""
    skip = f" AND doc_id NOT IN ({exclude})" if exclude else ""
    rows = con.sql(f"SELECT CAST(domain AS VARCHAR), sum(n_bytes + 1) FROM docs WHERE {pool_where(pool)}{skip} "
                   "AND domain IS NOT NULL GROUP BY 1 ORDER BY 1").fetchall()
    total = sum(n for _, n in rows) or 1
    return {d: n / total for d, n in rows}
