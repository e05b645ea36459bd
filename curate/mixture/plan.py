"""Planning a mixture with DuckDB alone: token targets, supply, repetition, and the sampled plan.

No text is ever read: token counts come from the stored ``n_bytes`` (tokenizer
``bytes``) or the ``tokens`` feature table (a Hugging Face tokenizer; counted
once). Planning computes only aggregates over a pool table of (doc_id,
domain, tokens, id hash, per-phase candidacy and prior uses); the plan itself,
one row per use (phase, domain, doc_id, epoch, n_tokens, order key), is a view
that the build streams in training order.

Sampling, per domain and phase. Every document has *slots*: its 1st, 2nd, ...
``max_epochs``-th use in the whole mixture (the cap is global, so a document
the main phase used twice has ``max_epochs - 2`` slots left for the anneal).
Slots are taken in the order (epoch, hash(hash(doc_id), seed, epoch)): whole passes
first, then a partial pass in seeded hash order that stops at the document
closest to the target, so a domain's tokens land within one document of it.
Each pass has its own hash, so epoch 2 is not epoch 1 replayed.

The partial pass is found without sorting the pool: a 4096-bucket histogram of
the hash gives the bucket where the target is crossed, and only that bucket's
documents are sorted. The training-order key interleaves domains by the share
of their phase tokens already consumed, so every domain's share is steady
across a phase and switches at the phase boundary.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

from curate.errors import ConfigError
from curate.mixture.spec import MixtureSpec, PhaseSpec
from curate.mixture.tokens import MixtureTokenizer
from curate.query import narrow_doc_features
from curate.store import Store

BUCKET_SHIFT = 52  # 64-bit hash >> 52 = 4096 buckets
TWO64 = float(2**64)


class ShortfallError(ConfigError):
    """The selected supply cannot meet the budget within ``max_epochs``."""


@dataclass
class Cell:
    """One (phase, domain) of the plan: what was asked, what the supply allows, what was taken."""

    phase: str
    domain: str
    weight: float
    target: int
    tokens: int = 0
    occurrences: int = 0
    docs: int = 0
    max_epoch: int = 0
    supply_docs: int = 0
    supply_tokens: int = 0  # candidate tokens once (before this phase's repetition)
    capacity: int = 0  # tokens still available within max_epochs
    shortfall: int = 0


@dataclass
class Plan:
    """A planned mixture. ``con`` holds the view ``plan_occ`` (one row per document use, computed when read)."""

    spec: MixtureSpec
    con: duckdb.DuckDBPyConnection
    cells: list[Cell] = field(default_factory=list)
    unique_tokens: int = 0  # tokens of the distinct documents used at least once
    tokenizer: MixtureTokenizer | None = None  # None: bytes
    used_sql: str = ""  # a query of the doc_id of every document used at least once

    def pool_sql(self) -> str:
        """The documents the mixture chooses from before any selection: the spec's corpora and domains."""
        sql = f"SELECT doc_id FROM docs WHERE domain IN ({', '.join(_lit(d) for d in self.spec.domains())})"
        if self.spec.corpora:
            sql += f" AND corpus IN ({', '.join(_lit(c) for c in self.spec.corpora)})"
        return sql

    @property
    def shortfalls(self) -> list[Cell]:
        return [c for c in self.cells if c.shortfall > 0]

    @property
    def tokens(self) -> int:
        return sum(c.tokens for c in self.cells)

    def ordered_sql(self, columns: str = "o.phase, o.domain, o.doc_id, o.epoch, o.n_tokens, o.order_key",
                    join: str = "") -> str:
        """The plan (``plan_occ o``, optionally joined) in training order (phase, then interleave key; ids
        break ties)."""
        return f"SELECT {columns} FROM plan_occ o {join} ORDER BY o.phase_idx, o.order_key, o.doc_id, o.epoch"

    def table(self) -> list[dict[str, Any]]:
        return [asdict(c) for c in self.cells]


def allocate(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Split an integer ``total`` by ``weights`` exactly (largest remainder; ties by name)."""
    wsum = sum(weights.values()) or 1.0
    raw = {k: total * w / wsum for k, w in weights.items()}
    out = {k: math.floor(v) for k, v in raw.items()}
    left = total - sum(out.values())
    for k in sorted(raw, key=lambda k: (-(raw[k] - out[k]), k))[:left]:
        out[k] += 1
    return out


def shortfall_message(spec: MixtureSpec, cells: list[Cell]) -> str:
    lines = [
        (f"mixture {spec.name!r}: the selected supply cannot meet tokens={spec.tokens:,} "
         f"within max_epochs={spec.max_epochs}:")
    ]
    for c in cells:
        lines.append(
            f"  phase {c.phase!r}, domain {c.domain!r}: needs {c.target:,} tokens, supply "
            f"{c.supply_tokens:,} tokens in {c.supply_docs:,} docs allows {c.capacity:,}; short by {c.shortfall:,}"
        )
    lines.append("lower the budget or the weights, raise max_epochs, widen the selection, "
                 "or build anyway with --allow-short (recorded in the manifest)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- store checks

def _describe(con: duckdb.DuckDBPyConnection, sql: str, field_name: str) -> list[str]:
    try:
        return [r[0] for r in con.execute(f"DESCRIBE {sql}").fetchall()]
    except duckdb.Error as exc:
        raise ConfigError(f"{field_name}: DuckDB refused it: {str(exc).splitlines()[0]}") from None


def check_against_store(spec: MixtureSpec, con: duckdb.DuckDBPyConnection) -> None:
    """Refuse names and SQL the store cannot satisfy, before any work (cheap: binding only)."""
    corpora = {r[0] for r in con.execute("SELECT DISTINCT corpus FROM docs").fetchall()}
    if spec.corpora:
        unknown = sorted(set(spec.corpora) - corpora)
        if unknown:
            raise ConfigError(f"corpora: unknown corpus {', '.join(map(repr, unknown))}; the store has {sorted(corpora)}")
    known = _known_domains(spec, con)
    fields = [("weights", spec.weights)] + [
        (f"phases[{i}] ({p.name}).weights", p.weights) for i, p in enumerate(spec.phases) if p.weights
    ]
    for name, weights in fields:
        unknown = sorted(set(weights) - known)
        if unknown:
            raise ConfigError(
                f"{name}: unknown domain {', '.join(map(repr, unknown))} "
                f"(weight {', '.join(f'{weights[d]:g}' for d in unknown)}); the selected corpora have "
                f"domains {sorted(known)}"
            )
    if spec.select_sql is not None:
        cols = _describe(con, f"({_strip_sql(spec.select_sql)})", f"select ({spec.select})")
        if "doc_id" not in cols:
            raise ConfigError(f"select ({spec.select}): the query must return a doc_id column, it returns {cols}")
    for i, w in enumerate(spec.where):
        _describe(con, f"SELECT doc_id FROM doc_features WHERE ({w})", f"where[{i}] {w!r}")
    for i, p in enumerate(spec.phases):
        if p.where:
            _describe(con, f"SELECT doc_id FROM doc_features WHERE ({p.where})", f"phases[{i}] ({p.name}).where {p.where!r}")


def _known_domains(spec: MixtureSpec, con: duckdb.DuckDBPyConnection) -> set[str]:
    sql = "SELECT DISTINCT domain FROM docs WHERE domain IS NOT NULL"
    if spec.corpora:
        sql += " AND corpus IN (SELECT unnest(?))"
        return {r[0] for r in con.execute(sql, [spec.corpora]).fetchall()}
    return {r[0] for r in con.execute(sql).fetchall()}


def _strip_sql(sql: str) -> str:
    """A .sql file as a subquery: without trailing semicolons (comments are fine for DuckDB)."""
    body = "\n".join(line for line in sql.strip().splitlines() if not line.strip().startswith("--"))
    # trailing newline: a line comment at the end must not swallow the caller's closing parenthesis
    return body.strip().rstrip(";").strip() + "\n"


# --------------------------------------------------------------------------- planning

def _lit(v: Any) -> str:
    """A Python value as a DuckDB literal (per-domain parameters are inlined into the queries)."""
    if v is None:
        return "NULL"
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return str(int(v))


def _per_dom(domains: list[str], values: dict[str, Any], cast: str) -> str:
    """A per-domain parameter as a list literal indexed by the pool's ``dom`` code: no join, no string compare."""
    return f"([{', '.join(_lit(values.get(d)) for d in domains)}]::{cast}[])[dom]"


def _pool_sql(spec: MixtureSpec, features: str, n_tokens: str) -> tuple[str, list[Any]]:
    """The pool: every selected document once, with its per-phase candidacy, in one pass over ``features``."""
    domains = spec.domains()
    # a literal IN list: a filter on the scan, where a subquery would become a join
    conds, params = [f"domain IN ({', '.join(_lit(d) for d in domains)})", f"{n_tokens} > 0"], []
    if spec.corpora:
        conds.append("corpus IN (SELECT unnest(?))")
        params.append(spec.corpora)
    if spec.select_sql is not None:
        conds.append(f"doc_id IN (SELECT doc_id FROM ({_strip_sql(spec.select_sql)}))")
    conds += [f"({w})" for w in spec.where]
    # per phase: is the document a candidate (its filter), and how often was it used before the phase
    cols = []
    for i, p in enumerate(spec.phases):
        cols.append(f"coalesce(({p.where}), false) AS cand_{i}" if p.where else f"true AS cand_{i}")
        cols.append(f"0::INTEGER AS u_{i}")
    # dom: the domain's index in spec.domains(); h0: the id hashed once (every seeded per-pass hash below
    # is a cheap hash of this integer)
    dom_list = "[" + ", ".join(_lit(d) for d in domains) + "]"
    return (f"SELECT doc_id, domain, list_position({dom_list}, domain)::UTINYINT AS dom, {n_tokens}::BIGINT AS n, "
            f"hash(doc_id) AS h0, {', '.join(cols)} FROM {features} AS doc_features "
            f"WHERE {' AND '.join(conds)}"), params


@dataclass
class _Phase:
    """A phase's sampling parameters per domain: the level ``k`` (whole passes below it, a partial pass
    at it), the partial pass's remaining tokens ``r`` and its last (hash, doc_id)."""

    idx: int
    domains: list[str]
    seed: int
    max_epochs: int
    k: dict[str, int] = field(default_factory=dict)
    r: dict[str, int] = field(default_factory=dict)
    cut_h: dict[str, int] = field(default_factory=dict)
    cut_doc: dict[str, str] = field(default_factory=dict)
    taken: dict[str, int] = field(default_factory=dict)  # tokens the partial pass holds, per domain
    supply: dict[str, dict[int, int]] = field(default_factory=dict)  # candidate tokens by prior uses u

    def param(self, name: str) -> str:
        cast = {"k": "INTEGER", "r": "BIGINT", "cut_h": "UBIGINT", "cut_doc": "VARCHAR"}[name]
        return _per_dom(self.domains, getattr(self, name), cast)

    @property
    def pass_hash(self) -> str:
        """The seeded hash ordering this phase's partial pass (a pass of its own: epoch k)."""
        return f"hash(h0, {self.seed}, {self.param('k')})"

    def partial_sql(self) -> str:
        """1 when the row is taken by the partial pass, else 0 (NULL parameters: not taken)."""
        i, k, m, h = self.idx, self.param("k"), self.max_epochs, self.pass_hash
        ch, cd = self.param("cut_h"), self.param("cut_doc")
        return (f"coalesce(CASE WHEN u_{i} < {k} AND {k} <= {m} AND ({h} < {ch} OR ({h} = {ch} AND doc_id <= {cd})) "
                "THEN 1 END, 0)")

    def uses_sql(self) -> str:
        """How many times a pool row is used in this phase: whole passes after ``u``, plus the partial one."""
        i, k, m = self.idx, self.param("k"), self.max_epochs
        return (f"CASE WHEN cand_{i} AND {k} IS NOT NULL THEN greatest(0, least({k} - 1, {m}) - u_{i}) "
                f"+ {self.partial_sql()} ELSE 0 END")


def plan_mixture(store: Store | str, spec: MixtureSpec, *, con: duckdb.DuckDBPyConnection | None = None,
                 progress: bool | None = None) -> Plan:
    """Plan ``spec`` over ``store``; shortfalls are recorded on the cells, never raised here.

    Only aggregates are computed here (a few scans of the pool, no text, no per-use rows):
    ``plan_occ``, one row per use in training order, is a view the build streams. With a Hugging
    Face tokenizer, documents not yet counted under it are counted first (the ``tokens`` table).
    """
    from curate.mixture.tokens import ensure_token_counts, resolve_tokenizer
    from curate.query import connect, define_views

    st = Store.of(store)
    con = con if con is not None else connect(st)
    con.execute("SET enable_progress_bar = false")
    check_against_store(spec, con)
    tokenizer = resolve_tokenizer(st, spec)
    if tokenizer is not None and ensure_token_counts(st, tokenizer, progress=progress):
        define_views(con, st)  # the counts are a new (or renewed) feature table
    n_tokens = "n_bytes" if tokenizer is None else "token_count"
    # the filters read doc_features: join only the feature tables they name (one pass for every phase)
    features = narrow_doc_features(con, st, n_tokens, *spec.where, *(p.where or "" for p in spec.phases))
    sql, params = _pool_sql(spec, features, n_tokens)
    con.execute(f"CREATE OR REPLACE TEMP TABLE plan_pool AS {sql}", params)
    plan = Plan(spec=spec, con=con, tokenizer=tokenizer)
    phase_tokens = allocate(spec.tokens, {str(i): p.fraction for i, p in enumerate(spec.phases)})
    domains = spec.domains()
    views = []
    for i, phase in enumerate(spec.phases):
        cells, ph = _plan_phase(con, spec, i, phase, phase_tokens[str(i)])
        last = i + 1 == len(spec.phases)
        if last:
            used = ph.uses_sql()
        else:
            # a document's remaining slots are global: the next phase sees this one's uses
            con.execute(f"UPDATE plan_pool SET u_{i + 1} = u_{i} + {ph.uses_sql()}")
            used = f"u_{i + 1} - u_{i}"
        stats = {}
        for dom, *row, unique in con.execute(f"""
            SELECT dom, sum(used), count(*) FILTER (used > 0), max(u_{i} + used) FILTER (used > 0), sum(n * used),
                   sum(n) FILTER (u_{i} + used > 0)
            FROM (SELECT dom, n, u_{i}, {used} AS used FROM plan_pool) GROUP BY ALL
        """).fetchall():
            stats[domains[dom - 1]] = row
            plan.unique_tokens += int(unique or 0) if last else 0
        if last:
            plan.used_sql = f"SELECT doc_id FROM plan_pool WHERE u_{i} + ({used}) > 0"
        for c in cells:
            occ, docs, max_epoch, tokens = stats.get(c.domain, (0, 0, 0, 0))
            c.occurrences, c.docs = int(occ or 0), int(docs or 0)
            c.max_epoch, c.tokens = int(max_epoch or 0), int(tokens or 0)
        plan.cells += cells
        views.append(_occ_view(con, spec, ph, phase))
    con.execute("CREATE OR REPLACE TEMP VIEW plan_occ AS " + " UNION ALL ".join(f"SELECT * FROM {v}" for v in views))
    return plan


def _levels(supply_by_u: dict[int, int], target: int, max_epochs: int) -> tuple[int, int, int]:
    """(K, R, capacity): slots of epochs < K are all taken, epoch K partially for R tokens."""
    capacity = sum((max_epochs - u) * s for u, s in supply_by_u.items() if u < max_epochs)
    taken = 0
    for k in range(1, max_epochs + 1):
        level = sum(s for u, s in supply_by_u.items() if u < k)
        if taken + level >= target:
            return k, target - taken, capacity
        taken += level
    return max_epochs + 1, 0, capacity  # short: every slot is taken


def _plan_phase(con: duckdb.DuckDBPyConnection, spec: MixtureSpec, idx: int, phase: PhaseSpec,
                tokens: int) -> tuple[list[Cell], _Phase]:
    m, domains = spec.max_epochs, spec.domains()
    weights = spec.phase_weights(phase)
    targets = allocate(tokens, weights)
    supply: dict[str, dict[int, int]] = {}
    docs_n: dict[str, int] = {}
    tokens_1: dict[str, int] = {}
    for dom, u, n_docs, n_tok in con.execute(
            f"SELECT dom, u_{idx}, count(*), sum(n) FROM plan_pool WHERE cand_{idx} GROUP BY ALL").fetchall():
        d = domains[dom - 1]
        supply.setdefault(d, {})[int(u)] = int(n_tok)
        docs_n[d] = docs_n.get(d, 0) + int(n_docs)
        tokens_1[d] = tokens_1.get(d, 0) + int(n_tok)
    cells = []
    ph = _Phase(idx, domains, spec.seed, m, supply=supply)
    for d in sorted(weights):
        t = targets[d]
        k, r, cap = _levels(supply.get(d, {}), t, m) if t > 0 else (1, 0, 0)
        cells.append(Cell(phase=phase.name, domain=d, weight=weights[d], target=t, supply_docs=docs_n.get(d, 0),
                          supply_tokens=tokens_1.get(d, 0), capacity=cap, shortfall=max(0, t - cap)))
        if t > 0:
            ph.k[d], ph.r[d] = k, r
    if ph.k:
        cut = _partial_cut(con, ph)
        ph.cut_h = {d: h for d, (h, _doc, _t) in cut.items()}
        ph.cut_doc = {d: doc for d, (_h, doc, _t) in cut.items()}
        ph.taken = {d: t for d, (_h, _doc, t) in cut.items()}
    return cells, ph


def _occ_view(con: duckdb.DuckDBPyConnection, spec: MixtureSpec, ph: _Phase, phase: PhaseSpec) -> str:
    """The view of this phase's uses, one row each: whole passes (epochs u+1 .. k-1) and the partial one (k).

    A use's order key is ``(before + taken * hash / hmax) / total``: the share of the domain's phase
    tokens consumed by then (hashes are uniform, so this is the token share up to sampling noise),
    which interleaves domains evenly within the phase.
    """
    i, m, seed = ph.idx, spec.max_epochs, spec.seed
    keys = []  # (dom, epoch, before, taken, hmax, total)
    for d, k in ph.k.items():
        dom = ph.domains.index(d) + 1
        levels = []
        for e in range(1, min(k, m + 1)):
            taken = sum(s for u, s in ph.supply.get(d, {}).items() if u < e)  # no supply: short
            if taken:
                levels.append((e, taken, TWO64))
        if d in ph.cut_h and k <= m:
            levels.append((k, ph.taken[d], float(ph.cut_h[d]) + 1.0))
        total = sum(t for _e, t, _h in levels) or 1
        before = 0
        for e, taken, hmax in levels:
            keys.append((dom, e, float(before), float(taken), hmax, float(total)))
            before += taken
    table, view = f"plan_keys_{i}", f"plan_occ_{i}"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} (dom UTINYINT, epoch INTEGER, before DOUBLE, taken DOUBLE, "
                "hmax DOUBLE, total DOUBLE)")
    if keys:  # empty when every target is below half of its first document
        con.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?)", keys)
    k = ph.param("k")
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW {view} AS
        WITH uses AS (
            SELECT doc_id, domain, dom, n, h0, u_{i} AS u,
                   unnest(range(u_{i} + 1, least({k} - 1, {m}) + 1)
                          || CASE WHEN {ph.partial_sql()} = 1 THEN [{k}] ELSE [] END) AS epoch
            FROM plan_pool WHERE cand_{i} AND {k} IS NOT NULL
        )
        SELECT {i} AS phase_idx, {_lit(phase.name)} AS phase, uses.domain, uses.doc_id, uses.epoch::INTEGER AS epoch,
               uses.n AS n_tokens,
               {i} + (pk.before + pk.taken * (hash(uses.h0, {seed}, uses.epoch::INTEGER)::DOUBLE / pk.hmax))
                   / pk.total AS order_key,
               uses.epoch = uses.u + 1 AS first_use
        FROM uses JOIN {table} pk ON pk.dom = uses.dom AND pk.epoch = uses.epoch
    """)
    return view


def _partial_cut(con: duckdb.DuckDBPyConnection, ph: _Phase) -> dict[str, tuple[int, str, int]]:
    """Per domain, the last (hash, doc_id) the partial pass takes and the tokens it then holds.

    The partial pass stops at the document closest to the target. It is found without sorting the
    pool: a 4096-bucket histogram of the pass hash gives the bucket where the target is crossed, and
    only that bucket's documents are sorted.
    """
    i, m, k, r, h = ph.idx, ph.max_epochs, ph.param("k"), ph.param("r"), ph.pass_hash
    live = f"cand_{i} AND {r} > 0 AND u_{i} < {k} AND {k} <= {m}"
    hist: dict[str, list[tuple[int, int]]] = {}
    for dom, b, s in con.execute(
            f"SELECT dom, {h} >> {BUCKET_SHIFT} AS b, sum(n) FROM plan_pool WHERE {live} GROUP BY ALL ORDER BY 1, 2"
    ).fetchall():
        hist.setdefault(ph.domains[dom - 1], []).append((int(b), int(s)))
    before_of: dict[str, tuple[int, int]] = {}
    for d, buckets in hist.items():
        before = 0
        for b, s in buckets:
            if before + s >= ph.r[d]:
                break
            before += s
        before_of[d] = (b, before)
    if not before_of:  # every target met by whole passes (or short)
        return {}
    x = _per_dom(ph.domains, {d: b for d, (b, _before) in before_of.items()}, "UBIGINT")
    # every crossing bucket in one scan of the candidates (they are ~1/4096 of them)
    in_bucket: dict[str, list[tuple[str, int, int]]] = {}
    for dom, doc_id, n, hv in con.execute(f"""
        SELECT dom, doc_id, n, {h} AS h FROM plan_pool WHERE {live} AND {h} >> {BUCKET_SHIFT} = {x}
        ORDER BY dom, h, doc_id
    """).fetchall():
        in_bucket.setdefault(ph.domains[dom - 1], []).append((doc_id, n, hv))
    out = {}
    for d, (b, before) in before_of.items():
        r_d = ph.r[d]
        last, cum = None, before
        for doc_id, n, hv in in_bucket.get(d, []):
            if cum >= r_d:
                break
            after = cum + int(n)
            if after > r_d and after - r_d > r_d - cum:  # stopping short is closer to the target
                break
            last, cum = (int(hv), doc_id), after
        if last is None and before > 0:
            # nothing from the crossing bucket: cut after the previous bucket's last document
            last = tuple(con.execute(f"""
                SELECT {h} AS h, doc_id FROM plan_pool
                WHERE {live} AND dom = ? AND {h} >> {BUCKET_SHIFT} < ? ORDER BY h DESC, doc_id DESC LIMIT 1
            """, [ph.domains.index(d) + 1, b]).fetchone())
        if last is not None:
            out[d] = (int(last[0]), str(last[1]), cum)
    return out
