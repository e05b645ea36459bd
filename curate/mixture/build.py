"""Building a mixture: plan, then stream the texts into ordered Parquet shards plus a manifest.

Output, under ``mixtures/<name>/``::

    part-00000.parquet   position, phase, domain, doc_id, epoch, n_tokens, text (training order),
                         and token_ids (int32) when the spec names a Hugging Face tokenizer
    plan.parquet         the same rows without text (every use of every document), plus where each is:
                         stream_start (its first token in the stream), doc_file and doc_row (its
                         document's shard and row in the store), for lineage
    manifest.json        spec + hash, store fingerprint, phase x domain table, shortfalls, parts
    report.md, *.png     the report (see curate.mixture.report)

Same spec + same store = byte-identical files: nothing time- or host-dependent
is written, and row groups are cut at fixed row counts whatever batches DuckDB
hands over.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import CurateError
from curate.mixture.manifest import MixtureManifest
from curate.mixture.plan import Plan, ShortfallError, plan_mixture, shortfall_message
from curate.mixture.spec import MixtureSpec, load_spec
from curate.store import Store

#: 2: plan.parquet carries each use's stream offset and its document's shard file and row
MANIFEST_FORMAT = 2
#: one row per use, in training order: what the parts and plan.parquet share
USE_FIELDS = [
    pa.field("position", pa.int64(), nullable=False),
    pa.field("phase", pa.string(), nullable=False),
    pa.field("domain", pa.string(), nullable=False),
    pa.field("doc_id", pa.string(), nullable=False),
    pa.field("epoch", pa.int32(), nullable=False),
    pa.field("n_tokens", pa.int64(), nullable=False),
]
PART_SCHEMA = pa.schema([*USE_FIELDS, pa.field("text", pa.large_string(), nullable=False)])
#: where each use is, for lineage to read a step's few plan row groups and documents instead of scanning:
#: its first token in the stream (EOS after every document) and its document's store-relative shard file
#: and row there (NULL on an object store, whose files DuckDB does not name)
LOCATION_FIELDS = [
    pa.field("stream_start", pa.int64(), nullable=False),
    pa.field("doc_file", pa.string()),
    pa.field("doc_row", pa.int64()),
]
PLAN_SCHEMA = pa.schema([*USE_FIELDS, *LOCATION_FIELDS])
#: with a Hugging Face tokenizer the parts also carry the ids (no BOS/EOS; a loader adds EOS per document)
IDS_FIELD = pa.field("token_ids", pa.large_list(pa.int32()), nullable=False)
ROW_GROUP_ROWS = 2048
#: plan.parquet's row groups: few enough that its footer reads fast, small enough that a step reads little
PLAN_ROW_GROUP_ROWS = 16384
PART_TOKENS = 64 << 20  # tokens per output shard (bytes tokenizer: ~64 MB of text)


def store_fingerprint(store: Store) -> dict[str, str]:
    """Per corpus and feature table, a hash of its committed files (names and sizes)."""
    out = {}
    for kind, names in (("shards", store.corpora()), ("features", store.feature_tables())):
        for n in names:
            h = hashlib.sha256()
            for rel in store.list_files(f"{kind}/{n}"):
                h.update(f"{rel}\0{store.size(rel)}\n".encode())
            out[f"{kind}/{n}"] = h.hexdigest()[:16]
    return out


class _PartWriter:
    """Writes rows into fixed-size row groups, so output bytes never depend on input batching."""

    def __init__(self, store: Store, rel: str, schema: pa.Schema, row_group_rows: int = ROW_GROUP_ROWS) -> None:
        self._ctx = store.atomic_output(rel)
        self._writer = pq.ParquetWriter(self._ctx.__enter__(), schema, compression="zstd", write_statistics=True,
                                        use_dictionary=[c for c in ("phase", "domain", "doc_file") if c in schema.names])
        self._group = row_group_rows
        self._pending: list[pa.Table] = []
        self._n = 0
        self.rows = 0
        self.tokens = 0

    def write(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._n += table.num_rows
        self.rows += table.num_rows
        self.tokens += int(pa.compute.sum(table.column("n_tokens")).as_py() or 0)
        if self._n >= self._group:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        t = pa.concat_tables(self._pending) if self._pending else None
        self._pending, self._n = [], 0
        if t is None:
            return
        full = (t.num_rows // self._group) * self._group if not final else t.num_rows
        for start in range(0, full, self._group):
            self._writer.write_table(t.slice(start, self._group), row_group_size=self._group)
        if full < t.num_rows:
            rest = t.slice(full)
            self._pending, self._n = [rest], rest.num_rows

    def close(self) -> None:
        self._flush(final=True)
        self._writer.close()
        self._ctx.__exit__(None, None, None)

    def abort(self, exc: BaseException) -> None:
        self._writer.close()
        self._ctx.__exit__(type(exc), exc, exc.__traceback__)


def _batches(con: duckdb.DuckDBPyConnection, sql: str, schema: pa.Schema) -> Iterator[pa.Table]:
    """Stream a query as tables cast to ``schema`` (positions added in order)."""
    reader = con.sql(sql).to_arrow_reader(ROW_GROUP_ROWS)  # streams: no full result in memory
    position = 0
    for batch in reader:
        t = pa.Table.from_batches([batch])
        t = t.add_column(0, "position", pa.array(np.arange(position, position + t.num_rows), pa.int64()))
        position += t.num_rows
        yield t.select(schema.names).cast(schema)


def _with_stream_start(t: pa.Table, start: int) -> tuple[pa.Table, int]:
    """``t`` with each use's first token in the stream (every document then its EOS), and the next start."""
    n = t.column("n_tokens").to_numpy() + 1
    ends = start + np.cumsum(n)
    return t.append_column(LOCATION_FIELDS[0], pa.array(ends - n, pa.int64())), int(ends[-1]) if len(ends) else start


class _Parts:
    """The ordered part files: a new one every ``part_tokens`` tokens (a use goes where its first token falls)."""

    def __init__(self, store: Store, base: str, schema: pa.Schema, part_tokens: int) -> None:
        self._store, self._base, self._schema, self._part_tokens = store, base, schema, part_tokens
        self.entries: list[dict[str, Any]] = []
        self._writer: _PartWriter | None = None
        self._cum = 0

    def write(self, t: pa.Table) -> None:
        n = t.column("n_tokens").to_numpy()
        before = self._cum + np.cumsum(n) - n  # tokens before each row: decides its shard
        idx = before // self._part_tokens
        self._cum += int(n.sum())
        for k in np.unique(idx):
            piece = t.filter(pa.array(idx == k))
            if self._writer is None or len(self.entries) - 1 < k:
                if self._writer is not None:
                    self._writer.close()
                name = Store.shard_name(len(self.entries))
                self.entries.append({"name": name, "first_position": int(piece.column("position")[0].as_py())})
                self._writer = _PartWriter(self._store, f"{self._base}/{name}", self._schema)
            self._writer.write(piece)
            self.entries[-1].update(rows=self._writer.rows, tokens=self._writer.tokens)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    def abort(self, exc: BaseException) -> None:
        if self._writer is not None:
            self._writer.abort(exc)


def _write_uses(store: Store, base: str, plan: Plan, part_tokens: int) -> tuple[int, list[dict[str, Any]]]:
    """plan.parquet and the parts from one pass over the uses joined with their texts, in training order
    (streamed; DuckDB spills its sort to disk when it must). Returns (plan rows, part entries)."""
    from curate.query import docs_with_location

    use_schema = pa.schema([*PART_SCHEMA, *(f for f in LOCATION_FIELDS if f.name != "stream_start")])
    sql = plan.ordered_sql("o.phase, o.domain, o.doc_id, o.epoch, o.n_tokens, d.text, d.doc_file, d.doc_row",
                           f"JOIN {docs_with_location(store)} d USING (doc_id)")
    encoder = plan.tokenizer.encoder() if plan.tokenizer is not None else None
    part_schema = PART_SCHEMA if encoder is None else PART_SCHEMA.append(IDS_FIELD)
    plan_out = _PartWriter(store, f"{base}/plan.parquet", PLAN_SCHEMA, PLAN_ROW_GROUP_ROWS)
    parts = _Parts(store, base, part_schema, part_tokens)
    start = 0
    try:
        for t in _batches(plan.con, sql, use_schema):
            located, start = _with_stream_start(t, start)
            plan_out.write(located.select(PLAN_SCHEMA.names))
            t = t.select(PART_SCHEMA.names)
            parts.write(t if encoder is None else t.append_column(IDS_FIELD, _token_ids(encoder, t)))
    except BaseException as exc:
        plan_out.abort(exc)
        parts.abort(exc)
        raise
    plan_out.close()
    parts.close()
    return plan_out.rows, parts.entries


def _token_ids(encoder: Any, t: pa.Table) -> pa.Array:
    """The texts' token ids; their lengths must be the counts the plan used."""
    enc = encoder.encode_batch(t.column("text").to_pylist(), add_special_tokens=False)
    ids = pa.array([e.ids for e in enc], IDS_FIELD.type)
    if not pa.compute.all(pa.compute.equal(pa.compute.list_value_length(ids), t.column("n_tokens"))).as_py():
        raise CurateError("a document's token count differs from the stored `tokens` table: the tokenizer files "
                          "changed during the build; build again (the counts are redone)")
    return ids


def build_mixture(store: Store | str, spec: MixtureSpec | str | dict[str, Any], *, allow_short: bool = False,
                  part_tokens: int = PART_TOKENS, report: bool = True, progress: bool | None = None,
                  reuse: bool = False) -> MixtureManifest:
    """Plan and materialize ``spec`` into ``mixtures/<name>/``; refuse a short supply unless ``allow_short``.

    ``reuse``: when the mixture on disk was built from this very spec over the same store files (shards and
    feature files, by name and size), return it untouched, so a scheduled rebuild over an unchanged store
    neither works nor rewrites the files a training job may be streaming.
    """
    from curate.query import connect

    st = Store.of(store)
    sp = spec if isinstance(spec, MixtureSpec) else load_spec(spec)
    if reuse:
        built = st.read_json(f"{st.mixtures_dir(sp.name)}/manifest.json")
        if built is not None and (built.get("spec_hash"), built.get("store"), built.get("allow_short"),
                                  built.get("duckdb"), built.get("format")) == (
                sp.spec_hash(), store_fingerprint(st), allow_short, duckdb.__version__, MANIFEST_FORMAT):
            return MixtureManifest(st, sp.name, built)
    con = connect(st)
    tmp = tempfile.mkdtemp(prefix="curate-mix-")
    try:
        con.execute("SET temp_directory = ?", [tmp])
        con.execute("SET preserve_insertion_order = true")
        plan = plan_mixture(st, sp, con=con, progress=progress)
        if plan.shortfalls and not allow_short:
            raise ShortfallError(shortfall_message(sp, plan.shortfalls))
        base = st.mixtures_dir(sp.name)
        for rel in st.list_files(base):  # a rebuild replaces every old shard
            st.delete(rel)
        rows, parts = _write_uses(st, base, plan, part_tokens)
        unique = plan.unique_tokens
        if report:
            st.write_json(f"{base}/scores.json", _scores(st, con, plan))
    finally:
        con.close()
        shutil.rmtree(tmp, ignore_errors=True)
    planned = sum(c.occurrences for c in plan.cells)
    if planned != rows:
        raise CurateError(f"mixture {sp.name!r}: {planned} planned uses but {rows} rows written: a document "
                          "vanished from the store during the build")
    data = _manifest(st, sp, plan, parts, rows, allow_short, unique)
    st.write_json(f"{base}/manifest.json", data)
    manifest = MixtureManifest(st, sp.name, data)
    if report:
        from curate.mixture.report import write_report

        write_report(manifest)
    return manifest


def _scores(st: Store, con: duckdb.DuckDBPyConnection, plan: Plan) -> dict[str, Any]:
    """Score distributions of the selected documents vs the pool, for the report."""
    from curate.mixture.report import SCORE_COLUMNS, score_distributions
    from curate.query import narrow_doc_features

    have = {r[0] for r in con.execute("DESCRIBE doc_features").fetchall()}
    columns = [c for c in SCORE_COLUMNS if c in have]
    if not columns:
        return {}
    return score_distributions(con, narrow_doc_features(con, st, *columns), plan.pool_sql(), plan.used_sql, columns)


def _manifest(st: Store, sp: MixtureSpec, plan: Plan, parts: list[dict[str, Any]], rows: int,
              allow_short: bool, unique: int) -> dict[str, Any]:
    phases = []
    for p in sp.phases:
        cells = [c for c in plan.cells if c.phase == p.name]
        phases.append({
            "name": p.name,
            "fraction": p.fraction,
            "target": sum(c.target for c in cells),
            "tokens": sum(c.tokens for c in cells),
            "domains": {c.domain: {k: v for k, v in c.__dict__.items() if k not in ("phase", "domain")}
                        for c in cells},
        })
    data = {
        "format": MANIFEST_FORMAT,
        "name": sp.name,
        "spec": sp.canonical(),
        "spec_hash": sp.spec_hash(),
        "store": store_fingerprint(st),
        "duckdb": duckdb.__version__,  # the seeded hash comes from DuckDB: record which one
        "tokenizer": sp.tokenizer,
        "tokenizer_info": plan.tokenizer.to_dict() if plan.tokenizer is not None else None,
        "tokens": {"target": sp.tokens, "planned": plan.tokens, "unique": unique,
                   # Muennighoff et al.: the repetition multiplier is what costs quality
                   "multiplier": round(plan.tokens / unique, 4) if unique else None},
        "rows": rows,
        "phases": phases,
        "allow_short": allow_short,
        "shortfalls": [{"phase": c.phase, "domain": c.domain, "target": c.target, "capacity": c.capacity,
                        "shortfall": c.shortfall} for c in plan.shortfalls],
        "plan": "plan.parquet",
        "parts": parts,
    }
    data["fingerprint"] = hashlib.sha256(repr(sorted(data.items())).encode()).hexdigest()[:16]
    return data
