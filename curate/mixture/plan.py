"""Planning a mixture with DuckDB alone: token targets, supply, repetition, and the sampled plan.

No text is ever read: token counts come from the stored ``n_bytes`` (tokenizer
``bytes``), and the plan is a table of (phase, domain, doc_id, epoch, n_tokens,
order key).

Sampling, per domain and phase. Every document has *slots*: its 1st, 2nd, ...
``max_epochs``-th use in the whole mixture (the cap is global, so a document
the main phase used twice has ``max_epochs - 2`` slots left for the anneal).
Slots are taken in the order (epoch, hash(doc_id, seed, epoch)): whole passes
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
    """A planned mixture. ``con`` holds the temp table ``plan_occ`` (one row per document use)."""

    spec: MixtureSpec
    con: duckdb.DuckDBPyConnection
    cells: list[Cell] = field(default_factory=list)

    @property
    def shortfalls(self) -> list[Cell]:
        return [c for c in self.cells if c.shortfall > 0]

    @property
    def tokens(self) -> int:
        return sum(c.tokens for c in self.cells)

    def ordered_sql(self, columns: str = "phase, domain, doc_id, epoch, n_tokens, order_key") -> str:
        """The plan in training order (phase, then interleave key; ids break ties)."""
        return f"SELECT {columns} FROM plan_occ ORDER BY phase_idx, order_key, doc_id, epoch"

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

def _pool_sql(spec: MixtureSpec) -> tuple[str, list[Any]]:
    # a literal IN list: a filter on the scan, where a subquery would become a join
    in_list = ", ".join("'" + d.replace("'", "''") + "'" for d in spec.domains())
    conds, params = [f"domain IN ({in_list})", "n_bytes > 0"], []
    if spec.corpora:
        conds.append("corpus IN (SELECT unnest(?))")
        params.append(spec.corpora)
    if spec.select_sql is not None:
        conds.append(f"doc_id IN (SELECT doc_id FROM ({_strip_sql(spec.select_sql)}))")
    if spec.where:
        clause = " AND ".join(f"({w})" for w in spec.where)
        conds.append(f"doc_id IN (SELECT doc_id FROM doc_features WHERE {clause})")
    return ("SELECT doc_id, domain, n_bytes::BIGINT AS n, 0::INTEGER AS u FROM docs WHERE "
            + " AND ".join(conds)), params


def plan_mixture(store: Store | str, spec: MixtureSpec, *, con: duckdb.DuckDBPyConnection | None = None) -> Plan:
    """Plan ``spec`` over ``store``; shortfalls are recorded on the cells, never raised here."""
    if con is None:
        from curate.query import connect

        con = connect(store)
    con.execute("SET enable_progress_bar = false")
    check_against_store(spec, con)
    sql, params = _pool_sql(spec)
    con.execute(f"CREATE OR REPLACE TEMP TABLE plan_pool AS {sql}", params)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE plan_occ (phase_idx INTEGER, phase VARCHAR, domain VARCHAR, "
        "doc_id VARCHAR, epoch INTEGER, n_tokens BIGINT, order_key DOUBLE, first_use BOOLEAN)"
    )
    plan = Plan(spec=spec, con=con)
    phase_tokens = allocate(spec.tokens, {str(i): p.fraction for i, p in enumerate(spec.phases)})
    for i, phase in enumerate(spec.phases):
        last = i == len(spec.phases) - 1
        plan.cells += _plan_phase(con, spec, i, phase, phase_tokens[str(i)], update_usage=not last)
    stats = {
        (r[0], r[1]): r[2:]
        for r in con.execute(
            # first_use marks a document's first use in its phase: counting it beats count(DISTINCT)
            "SELECT phase, domain, count(*), count(*) FILTER (first_use), max(epoch), sum(n_tokens) "
            "FROM plan_occ GROUP BY ALL"
        ).fetchall()
    }
    for c in plan.cells:
        occ, docs, max_epoch, tokens = stats.get((c.phase, c.domain), (0, 0, 0, 0))
        c.occurrences, c.docs, c.max_epoch, c.tokens = int(occ), int(docs), int(max_epoch or 0), int(tokens or 0)
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
                tokens: int, *, update_usage: bool) -> list[Cell]:
    seed, m = spec.seed, spec.max_epochs
    weights = spec.phase_weights(phase)
    targets = allocate(tokens, weights)
    con.execute("DROP VIEW IF EXISTS plan_cand")
    con.execute("DROP TABLE IF EXISTS plan_cand")
    if phase.where:
        con.execute(f"CREATE OR REPLACE TEMP TABLE plan_cand AS SELECT * FROM plan_pool WHERE doc_id IN "
                    f"(SELECT doc_id FROM doc_features WHERE ({phase.where}))")
    else:
        con.execute("CREATE OR REPLACE TEMP VIEW plan_cand AS SELECT * FROM plan_pool")
    supply: dict[str, dict[int, int]] = {}
    docs_n: dict[str, int] = {}
    tokens_1: dict[str, int] = {}
    for d, u, n_docs, n_tok in con.execute("SELECT domain, u, count(*), sum(n) FROM plan_cand GROUP BY ALL").fetchall():
        supply.setdefault(d, {})[int(u)] = int(n_tok)
        docs_n[d] = docs_n.get(d, 0) + int(n_docs)
        tokens_1[d] = tokens_1.get(d, 0) + int(n_tok)
    cells, lv = [], []
    for d in sorted(weights):
        t = targets[d]
        k, r, cap = _levels(supply.get(d, {}), t, m) if t > 0 else (1, 0, 0)
        cells.append(Cell(phase=phase.name, domain=d, weight=weights[d], target=t, supply_docs=docs_n.get(d, 0),
                          supply_tokens=tokens_1.get(d, 0), capacity=cap, shortfall=max(0, t - cap)))
        if t > 0:
            lv.append((d, k, r))
    if not lv:
        return cells
    con.execute("CREATE OR REPLACE TEMP TABLE plan_lv (domain VARCHAR, k INTEGER, r BIGINT)")
    con.executemany("INSERT INTO plan_lv VALUES (?, ?, ?)", lv)
    full = [(d, e) for d, k, _r in lv for e in range(1, min(k, m + 1))]
    con.execute("CREATE OR REPLACE TEMP TABLE plan_full (domain VARCHAR, epoch INTEGER)")
    if full:
        con.executemany("INSERT INTO plan_full VALUES (?, ?)", full)
    cut = _partial_cut(con, seed)
    con.execute("CREATE OR REPLACE TEMP TABLE plan_cut (domain VARCHAR, h UBIGINT, doc_id VARCHAR, taken BIGINT)")
    if cut:
        con.executemany("INSERT INTO plan_cut VALUES (?, ?, ?, ?)", cut)
    keys = _level_keys(spec, supply, lv, {c[0]: c for c in cut})
    con.execute("CREATE OR REPLACE TEMP TABLE plan_keys (domain VARCHAR, epoch INTEGER, before DOUBLE, "
                "taken DOUBLE, hmax DOUBLE, total DOUBLE)")
    if keys:  # empty when every target is below half of its first document
        con.executemany("INSERT INTO plan_keys VALUES (?, ?, ?, ?, ?, ?)", keys)
    # one row per use: whole passes (epochs u+1 .. k-1) and the partial pass (epoch k, hash prefix)
    con.execute(f"""
        INSERT INTO plan_occ
        WITH uses AS (
            SELECT c.doc_id, c.domain, c.n, f.epoch, f.epoch = c.u + 1 AS first_use
            FROM plan_cand c JOIN plan_full f ON f.domain = c.domain AND f.epoch > c.u
            UNION ALL
            SELECT c.doc_id, c.domain, c.n, lv.k AS epoch, lv.k = c.u + 1 AS first_use
            FROM plan_cand c JOIN plan_lv lv USING (domain) JOIN plan_cut cut USING (domain)
            WHERE c.u < lv.k AND lv.k <= {m}
              AND (hash(c.doc_id, {seed}, lv.k) < cut.h
                   OR (hash(c.doc_id, {seed}, lv.k) = cut.h AND c.doc_id <= cut.doc_id))
        )
        SELECT {idx}, ?, uses.domain, uses.doc_id, uses.epoch, uses.n,
               {idx} + (pk.before + pk.taken * (hash(uses.doc_id, {seed}, uses.epoch)::DOUBLE / pk.hmax)) / pk.total,
               uses.first_use
        FROM uses JOIN plan_keys pk ON pk.domain = uses.domain AND pk.epoch = uses.epoch
    """, [phase.name])
    if update_usage:
        # a document's remaining slots are global: the next phase sees this one's uses
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE plan_pool AS
            SELECT p.doc_id, p.domain, p.n,
                   CASE WHEN c.doc_id IS NULL OR lv.k IS NULL THEN p.u
                        ELSE greatest(p.u, least(lv.k, {m + 1}) - 1) + CASE WHEN p.u < lv.k AND lv.k <= {m}
                             AND (hash(p.doc_id, {seed}, lv.k) < cut.h OR (hash(p.doc_id, {seed}, lv.k) = cut.h
                                  AND p.doc_id <= cut.doc_id)) THEN 1 ELSE 0 END
                   END::INTEGER AS u
            FROM plan_pool p
            {"LEFT JOIN (SELECT doc_id FROM plan_cand) c USING (doc_id)" if phase.where else
             "CROSS JOIN (SELECT 1 AS doc_id) c"}  -- no filter: every pool doc was a candidate
            LEFT JOIN plan_lv lv ON lv.domain = p.domain
            LEFT JOIN plan_cut cut ON cut.domain = p.domain
        """)
    return cells


def _partial_cut(con: duckdb.DuckDBPyConnection, seed: int) -> list[tuple[str, int, str, int]]:
    """Per domain, the last (hash, doc_id) the partial pass takes: the document closest to the target."""
    hist: dict[str, list[tuple[int, int]]] = {}
    rows = con.execute(f"""
        SELECT c.domain, hash(c.doc_id, {seed}, lv.k) >> {BUCKET_SHIFT} AS b, sum(c.n)
        FROM plan_cand c JOIN plan_lv lv USING (domain)
        WHERE lv.r > 0 AND c.u < lv.k GROUP BY ALL ORDER BY 1, 2
    """).fetchall()
    for d, b, s in rows:
        hist.setdefault(d, []).append((int(b), int(s)))
    r_of = {d: int(r) for d, _k, r in con.execute("SELECT * FROM plan_lv").fetchall()}
    crossing, before_of = [], {}
    for d, buckets in hist.items():
        r, before = r_of[d], 0
        for b, s in buckets:
            if before + s >= r:
                break
            before += s
        crossing.append((d, b))
        before_of[d] = (b, before)
    con.execute("CREATE OR REPLACE TEMP TABLE plan_cross (domain VARCHAR, b UBIGINT)")
    if not crossing:  # every target met by whole passes (or short)
        return []
    con.executemany("INSERT INTO plan_cross VALUES (?, ?)", crossing)
    # every crossing bucket in one scan of the candidates (they are ~1/4096 of them)
    in_bucket: dict[str, list[tuple[str, int, int]]] = {}
    for d, doc_id, n, h in con.execute(f"""
        SELECT c.domain, c.doc_id, c.n, hash(c.doc_id, {seed}, lv.k) AS h
        FROM plan_cand c JOIN plan_lv lv USING (domain) JOIN plan_cross x USING (domain)
        WHERE c.u < lv.k AND hash(c.doc_id, {seed}, lv.k) >> {BUCKET_SHIFT} = x.b
        ORDER BY c.domain, h, c.doc_id
    """).fetchall():
        in_bucket.setdefault(d, []).append((doc_id, n, h))
    out = []
    for d, (b, before) in before_of.items():
        r = r_of[d]
        last, cum = None, before
        for doc_id, n, h in in_bucket.get(d, []):
            if cum >= r:
                break
            after = cum + int(n)
            if after > r and after - r > r - cum:  # stopping short is closer to the target
                break
            last, cum = (int(h), doc_id), after
        if last is None and before > 0:
            # nothing from the crossing bucket: cut after the previous bucket's last document
            last = tuple(con.execute(f"""
                SELECT hash(c.doc_id, {seed}, lv.k) AS h, c.doc_id FROM plan_cand c JOIN plan_lv lv USING (domain)
                WHERE c.domain = ? AND c.u < lv.k AND hash(c.doc_id, {seed}, lv.k) >> {BUCKET_SHIFT} < ?
                ORDER BY h DESC, c.doc_id DESC LIMIT 1
            """, [d, b]).fetchone())
        if last is not None:
            out.append((d, last[0], last[1], cum))
    return out


def _level_keys(spec: MixtureSpec, supply: dict[str, dict[int, int]], lv: list[tuple[str, int, int]],
                cut: dict[str, tuple[str, int, str, int]]) -> list[tuple[str, int, float, float, float, float]]:
    """Per (domain, epoch): tokens before that pass, tokens it takes, its hash range, the phase total.

    A use's order key is ``(before + taken * hash / hmax) / total``: the share of
    the domain's phase tokens consumed by then (hashes are uniform, so this is
    the token share up to sampling noise), which interleaves domains evenly.
    """
    out = []
    for d, k, _r in lv:
        levels = []
        for e in range(1, min(k, spec.max_epochs + 1)):
            taken = sum(s for u, s in supply[d].items() if u < e)
            if taken:
                levels.append((e, taken, TWO64))
        if d in cut and k <= spec.max_epochs:
            _d, h, _doc, taken = cut[d]
            levels.append((k, taken, float(h) + 1.0))
        total = sum(t for _e, t, _h in levels) or 1
        before = 0
        for e, taken, hmax in levels:
            out.append((d, e, float(before), float(taken), hmax, float(total)))
            before += taken
    return out
