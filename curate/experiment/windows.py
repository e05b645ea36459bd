"""Training windows drawn uniformly by byte position from the documents a method keeps.

A method keeps a set of documents (SQL over the store); a run trains on ``n`` windows
of ``seq_len`` byte tokens whose start positions are drawn uniformly (seeded) over
the kept documents laid end to end, each followed by its end-of-document token. So a
run trains on the kept set's own distribution of bytes, sampled in ``n`` independent
pieces: two seeds of the same method differ by the luck of ~10k windows, not of a few
hundred whole documents (a 40 kB document is 3% of a 1.2M-token draw; whole-document
draws made random seeds end 0.10-0.30 bits/byte apart).

Only the documents the windows touch are read, so memory follows the budget, not the
pool. A phase may mix components with weights (each gets its share of the windows,
by largest remainder): the end-of-training phase upsamples domains that way.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from curate.errors import ConfigError
from curate.lm.tokenizer import EOS_ID

_names = itertools.count()


@dataclass(frozen=True)
class Component:
    """Documents to draw windows from (SQL returning ``doc_id``, within the pool) and their share of a phase."""

    sql: str
    weight: float = 1.0
    label: str = ""


@dataclass(frozen=True)
class Phase:
    """A share of a run's windows and the components they come from (trained in phase order)."""

    name: str
    fraction: float
    components: tuple[Component, ...]


def split_counts(total: int, weights: Sequence[float]) -> list[int]:
    """``total`` split in proportion to ``weights`` by largest remainder (the parts sum to ``total``)."""
    w = np.asarray(weights, dtype=np.float64)
    if len(w) == 0 or (w < 0).any() or w.sum() <= 0:
        raise ConfigError(f"weights must be non-negative with a positive sum, got {list(weights)}")
    exact = total * w / w.sum()
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - int(counts.sum())]] += 1
    return counts.tolist()


def kept_lengths(con: duckdb.DuckDBPyConnection, sql: str, pool_where: str, exclude: str | None = None) -> pa.Table:
    """(doc_id, domain, n_tokens = bytes + end-of-document) of the kept documents inside the pool, by doc_id."""
    skip = f"AND doc_id NOT IN ({exclude})" if exclude else ""
    try:
        return con.sql(f"""
            SELECT doc_id, CAST(domain AS VARCHAR) AS domain, n_bytes + 1 AS n_tokens
            FROM docs WHERE {pool_where} AND n_bytes > 0 {skip}
              AND doc_id IN (SELECT doc_id FROM ({sql}) AS kept)
            ORDER BY doc_id""").to_arrow_table()
    except duckdb.Error as exc:
        raise ConfigError(f"the selection SQL failed in DuckDB: {str(exc).splitlines()[0]}\n{sql}") from None


def sample_starts(lengths: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` start positions, uniform over the concatenation of documents of ``lengths`` tokens."""
    total = int(lengths.sum())
    if total <= 0:
        raise ConfigError("the selection keeps no text to draw windows from")
    return rng.integers(0, total, size=n, dtype=np.int64)


def read_windows(con: duckdb.DuckDBPyConnection, docs: pa.Table, starts: np.ndarray, seq_len: int) -> np.ndarray:
    """(len(starts), seq_len) uint16 token windows; a window that runs off a document continues into the next
    (wrapping at the end), as packed training data does."""
    lengths = docs.column("n_tokens").to_numpy().astype(np.int64)
    ends = np.cumsum(lengths)
    total = int(ends[-1])
    if total < seq_len:
        raise ConfigError(f"the selection holds {total} tokens, less than one window of {seq_len}")
    # every document a window touches: from the one holding its start, on until seq_len tokens are covered
    first = np.searchsorted(ends, starts, side="right")
    need: set[int] = set()
    for s, j in zip(starts.tolist(), first.tolist()):
        covered = int(ends[j]) - s
        need.add(j)
        while covered < seq_len:
            j = (j + 1) % len(lengths)
            need.add(j)
            covered += int(lengths[j])
    wanted = np.array(sorted(need), dtype=np.int64)
    tokens = _doc_tokens(con, docs.column("doc_id").take(pa.array(wanted)).to_pylist())
    by_index = dict(zip(wanted.tolist(), tokens))
    out = np.empty((len(starts), seq_len), dtype=np.uint16)
    for row, (s, j) in enumerate(zip(starts.tolist(), first.tolist())):
        offset = s - (int(ends[j]) - int(lengths[j]))
        pieces, have = [], 0
        while have < seq_len:
            piece = by_index[j][offset: offset + seq_len - have]
            pieces.append(piece)
            have += len(piece)
            j, offset = (j + 1) % len(lengths), 0
        out[row] = np.concatenate(pieces)
    return out


def _doc_tokens(con: duckdb.DuckDBPyConnection, doc_ids: list[str]) -> list[np.ndarray]:
    """Byte tokens + end-of-document of each document, in the order of ``doc_ids``."""
    name = f"_exp_windows_{next(_names)}"
    con.register(name, pa.table({"doc_id": pa.array(doc_ids, pa.string()), "pos": np.arange(len(doc_ids))}))
    try:
        texts = con.sql(f"SELECT d.text FROM {name} w JOIN docs d USING (doc_id) ORDER BY w.pos").fetchall()
    finally:
        con.unregister(name)
    if len(texts) != len(doc_ids):
        raise ConfigError(f"{len(doc_ids) - len(texts)} drawn document(s) are missing from the store")
    eos = np.array([EOS_ID], dtype=np.uint16)
    return [np.concatenate([np.frombuffer(t.encode(), dtype=np.uint8).astype(np.uint16), eos]) for (t,) in texts]


@dataclass
class Draw:
    """A run's windows in training order, with what they came from."""

    windows: np.ndarray  # (n, seq_len) uint16
    phase: np.ndarray  # (n,) index into phases
    domain_tokens: dict[str, dict[str, int]]  # phase name -> domain -> tokens drawn (by the window's start)
    supply: dict[str, int]  # phase/component label -> tokens it could draw from

    @property
    def tokens(self) -> int:
        return int(self.windows.size)


def _rng(seed: int, *names: str) -> np.random.Generator:
    """The generator of one component (or one phase's interleaving): the same (seed, phase, label) always draws
    the same positions, whatever else the run draws, so a run that changes only its last phase trains on
    exactly the windows of the plain run before it (the two are paired, seed by seed)."""
    return np.random.default_rng([int(seed), *(zlib.crc32(n.encode()) for n in names)])


def draw_windows(con: duckdb.DuckDBPyConnection, phases: Sequence[Phase], n: int, seq_len: int, *, seed: int,
                 pool_where: str, exclude: str | None = None) -> Draw:
    """``n`` windows: each phase's share of them (in phase order), each component's share of its phase, starts
    uniform over the component's documents in the component's own seeded stream (so a phase's windows are
    i.i.d.; components of one phase are interleaved at random). ``exclude``: SQL of doc_ids never drawn."""
    if not phases:
        raise ConfigError("a run needs at least one phase")
    per_phase = split_counts(n, [p.fraction for p in phases])
    blocks, phase_idx, domain_tokens, supply = [], [], {}, {}
    for pi, (phase, count) in enumerate(zip(phases, per_phase)):
        rows = []
        dom = domain_tokens.setdefault(phase.name, {})
        for ci, (comp, k) in enumerate(zip(phase.components,
                                           split_counts(count, [c.weight for c in phase.components]))):
            label = comp.label or str(ci)
            docs = kept_lengths(con, comp.sql, pool_where, exclude)
            lengths = docs.column("n_tokens").to_numpy().astype(np.int64)
            supply[f"{phase.name}/{label}"] = int(lengths.sum())
            if k == 0:
                continue
            starts = sample_starts(lengths, k, _rng(seed, phase.name, label))
            rows.append(read_windows(con, docs, starts, seq_len))
            which = np.searchsorted(np.cumsum(lengths), starts, side="right")
            names = np.array(docs.column("domain").to_pylist(), dtype=object)[which]
            for d, c in zip(*np.unique(names.astype(str), return_counts=True)):
                dom[str(d)] = dom.get(str(d), 0) + int(c) * seq_len
        block = np.concatenate(rows) if rows else np.empty((0, seq_len), np.uint16)
        if len(rows) > 1:
            block = block[_rng(seed, phase.name, "#interleave").permutation(len(block))]
        blocks.append(block)
        phase_idx.append(np.full(len(block), pi, dtype=np.int8))
    return Draw(np.concatenate(blocks), np.concatenate(phase_idx), domain_tokens, supply)
