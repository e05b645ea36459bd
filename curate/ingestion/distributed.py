"""Ingest on Ray: input pieces read by workers, deduplicated across them in DuckDB, committed in input order.

A *piece* is a whole input (or the rest of one, when a run resumes inside it), a byte range of whole
lines of a plain JSON lines file larger than ``piece_bytes``, or a range of whole row groups of a Parquet
file larger than that. Each piece goes to a
one-CPU Ray task that reads, validates and ids it exactly as the single-process path does, drops the
duplicates inside the piece, and writes its documents (shards of at most ``shard_rows`` / ``shard_bytes``)
and its quarantine records to *staged* files: temporaries in the corpus's own folders that no reader
globs and that the next run removes if this one dies.

The driver never holds the corpus's ids as Python objects: they live in a DuckDB table, loaded once
from the committed shards, which spills to disk past its memory limit. When the next pieces in input
order are staged, one DuckDB query over their ``doc_id`` columns and that table finds the rows that
are not the first occurrence of their id, and adds the others' ids to it; a staged shard without such
rows is renamed into place as it is, one with them is rewritten without them. Each piece is then
committed through the corpus manifest exactly like the single-process writer's commits (shards
renamed, quarantine renamed, manifest records the input position and counts), so the store, the
summary and a resumed run are the same whichever path wrote them.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate import faults
from curate.docid import SeenIds
from curate.errors import CurateError
from curate.ingestion.readers import (
    Input,
    ReadContext,
    line_starts,
    parquet_row_cuts,
    read,
    read_jsonl_range,
    splittable,
)
from curate.ingestion.schema import DOC_SCHEMA, QUARANTINE_SCHEMA
from curate.ingestion.writer import ShardWriter, doc_writer
from curate.store import Store, temp_name

#: staged pieces waiting for their commit, per worker: bounds the disk a slow early piece makes others hold
WINDOW_PER_WORKER = 4
#: DuckDB's memory for the corpus's ids while deduplicating across workers; past it, the table spills to disk
DEDUP_MEMORY = "1GB"
#: plain JSON lines inputs larger than this are read in byte ranges of about this size, Parquet inputs in
#: ranges of row groups of about this many compressed bytes
PIECE_BYTES = 32 << 20


class IngestWorkerDied(CurateError):
    """A Ray worker reading an input piece died (killed, out of memory) more often than ``retries`` allows."""


@dataclass(frozen=True)
class Job:
    """What every worker needs besides its piece (put in Ray's object store once)."""

    store_uri: str
    ctx: ReadContext
    shard_rows: int
    shard_bytes: int
    row_group_rows: int


@dataclass(frozen=True)
class PieceSpec:
    """One unit of work: input ``input_idx`` from position ``skip`` to its end (or to row ``stop`` of a
    Parquet input: whole row groups, rows numbered as in the file), or the byte range ``[start, end)`` of a
    plain JSON lines input (whole lines; numbered from 1 inside the range)."""

    order: int  # commit order within the run
    input_idx: int
    inp: Input
    skip: int = 0
    start: int | None = None
    end: int | None = None
    last: bool = True  # the input's last piece
    lines_before: int | None = None  # lines of the input before ``start``, when known at planning
    stop: int | None = None  # a Parquet row range's end


@dataclass
class Staged:
    """A worker's result: its staged files and the piece's counts (duplicates inside the piece only)."""

    order: int
    input_idx: int
    shards: list[tuple[str, int, int]]  # (store-relative temporary, rows, bytes)
    quarantine: tuple[str, int] | None
    counts: dict[str, int]
    reasons: dict[str, int]
    position: int  # input position reached (for a byte range: lines in the range)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    pid: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def stage_piece(job: Job, spec: PieceSpec) -> Staged:
    """Worker side: read, validate, id and dedup one piece; write its shards and quarantine as temporaries."""
    # run imports this module lazily; importing run here keeps the cycle one-way
    from curate.ingestion.run import piece_docs

    t0, cpu0 = time.perf_counter(), time.process_time()
    pa.set_cpu_count(1)  # one Ray CPU per worker: pyarrow's parser and compressor must not take more
    pa.set_io_thread_count(1)
    st = Store.open(job.store_uri)
    corpus = job.ctx.corpus
    shard_dir, q_dir = st.shards_dir(corpus), st.quarantine_dir(corpus)
    st.fs.create_dir(st.path(shard_dir), recursive=True)
    seen = SeenIds()
    counts = {"read": 0, "kept": 0, "quarantined": 0, "duplicates": 0, "bytes_kept": 0}
    reasons: dict[str, int] = {}
    shards: list[tuple[str, int, int]] = []
    quarantine: list[pa.Table] = []
    writer = stream = tmp = None
    rows = nbytes = 0
    pending: list[pa.Table] = []
    position = spec.skip

    def flush(final: bool) -> None:
        nonlocal writer, stream, tmp, rows, nbytes, pending
        if pending:
            table = pa.concat_tables([t.cast(DOC_SCHEMA) for t in pending])
            pending = []
            if writer is None:
                tmp = temp_name(f"{shard_dir}/stage-{spec.order:06d}-{len(shards):04d}.parquet")
                stream = st.fs.open_output_stream(st.path(tmp))
                writer = doc_writer(stream)
            writer.write_table(table, row_group_size=job.row_group_rows)
        if writer is not None and (final or rows >= job.shard_rows or nbytes >= job.shard_bytes):
            writer.close()
            stream.close()
            shards.append((tmp, rows, nbytes))
            writer = stream = tmp = None
            rows = nbytes = 0

    try:
        pieces = (read(spec.inp, job.ctx, spec.skip, spec.stop) if spec.start is None
                  else read_jsonl_range(spec.inp, job.ctx, spec.start, spec.end))
        for piece in pieces:
            docs, q, delta, why = piece_docs(piece, corpus, seen, job.ctx.max_doc_bytes)
            for k, v in delta.items():
                counts[k] += v
            for k, v in why.items():
                reasons[k] = reasons.get(k, 0) + v
            if q is not None:
                quarantine.append(q)
            position = piece.position
            if docs.num_rows:
                pending.append(docs)
                rows += docs.num_rows
                nbytes += delta["bytes_kept"]
                if sum(t.num_rows for t in pending) >= job.row_group_rows or rows >= job.shard_rows \
                        or nbytes >= job.shard_bytes:
                    flush(final=False)
            faults.point("ingest.worker_batch")
        flush(final=True)
        q_staged = None
        if quarantine:
            table = pa.concat_tables([t.cast(QUARANTINE_SCHEMA) for t in quarantine])
            st.fs.create_dir(st.path(q_dir), recursive=True)
            q_tmp = temp_name(f"{q_dir}/stage-{spec.order:06d}.parquet")
            with st.fs.open_output_stream(st.path(q_tmp)) as out:
                pq.write_table(table, out, compression="zstd")
            q_staged = (q_tmp, table.num_rows)
    except BaseException:
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
                stream.close()
        for rel in [t for t, _, _ in shards] + ([tmp] if tmp else []):
            with contextlib.suppress(Exception):
                st.delete(rel)
        raise
    return Staged(order=spec.order, input_idx=spec.input_idx, shards=shards, quarantine=q_staged, counts=counts,
                  reasons=reasons, position=position, seconds=time.perf_counter() - t0,
                  cpu_seconds=time.process_time() - cpu0, pid=os.getpid())


def plan_pieces(inputs: list[Input], run: dict[str, Any], piece_bytes: int) -> list[PieceSpec]:
    """The pieces left to read from a run's recorded position (input index, position inside it).

    Plain JSON lines inputs larger than ``piece_bytes`` are cut into byte ranges of whole lines, Parquet
    inputs into ranges of whole row groups; the rest are read whole. A run stopped inside an input resumes
    there: at the recorded byte offset when a byte range was the last thing committed, else (a
    single-process run's position, or a Parquet row) by lines or rows.
    """
    idx0, line0 = run["position"]
    at = run.get("position_byte")  # [input, line, byte] of the last committed byte range
    specs: list[PieceSpec] = []
    for idx in range(idx0, len(inputs)):
        inp = inputs[idx]
        skip = line0 if idx == idx0 else 0
        if inp.format == "parquet" and inp.path and os.path.getsize(inp.path) > piece_bytes:
            rows = parquet_row_cuts(inp.path, skip, piece_bytes)
            for a, b in itertools.pairwise(rows):
                specs.append(PieceSpec(order=len(specs), input_idx=idx, inp=inp, skip=a, stop=b, last=b == rows[-1]))
            continue
        start = 0 if not skip else at[2] if at and at[:2] == [idx, skip] else None
        if start is not None and splittable(inp) and os.path.getsize(inp.path) - start > piece_bytes:
            cuts = line_starts(inp.path, start, piece_bytes)
            for a, b in itertools.pairwise(cuts):
                specs.append(PieceSpec(order=len(specs), input_idx=idx, inp=inp, start=a, end=b,
                                       last=b == cuts[-1], lines_before=skip if a == start else None))
        else:
            specs.append(PieceSpec(order=len(specs), input_idx=idx, inp=inp, skip=skip))
    return specs


def ingest_on_ray(st: Store, inputs: list[Input], ctx: ReadContext, writer: ShardWriter, run: dict[str, Any], *,
                  workers: int, ray_address: str | None, retries: int, advance: Callable[[int], None],
                  piece_bytes: int = PIECE_BYTES) -> None:
    """Read ``inputs`` from ``run["position"]`` on ``workers`` Ray tasks and commit every piece in order."""
    from curate.execute import init_ray
    from curate.objstore import worker_env

    specs = plan_pieces(inputs, run, piece_bytes)
    if not specs:
        return
    ray = init_ray(ray_address)
    job = Job(store_uri=st.uri, ctx=ctx, shard_rows=writer.shard_rows, shard_bytes=writer.shard_bytes,
              row_group_rows=writer.row_group_rows)
    env = {} if st.is_local else worker_env()  # each worker opens the store itself: hand it our S3 settings
    for var in ("CURATE_FAULT", "CURATE_FAULT_ONCE"):  # crash tests reach workers on any cluster
        if os.environ.get(var):
            env[var] = os.environ[var]
    options: dict[str, Any] = {"num_cpus": 1, "max_retries": retries, "retry_exceptions": False}
    if env:
        options["runtime_env"] = {"env_vars": env}
    remote = _remote_stage_piece(ray).options(**options)
    job_ref = ray.put(job)
    pending: dict[Any, PieceSpec] = {}
    ready: dict[int, Staged] = {}
    lines: dict[int, int] = {}  # per input read in byte ranges: lines committed so far
    submitted = committed = 0
    window = WINDOW_PER_WORKER * workers
    t0 = time.perf_counter()
    spill = tempfile.mkdtemp(prefix="curate-ingest-dedup-")
    seen: _SeenIds | None = None

    def top_up() -> None:
        nonlocal submitted
        while len(pending) < workers and submitted < len(specs) and submitted - committed < window:
            pending[remote.remote(job_ref, specs[submitted])] = specs[submitted]
            submitted += 1

    try:
        while committed < len(specs):
            top_up()
            done, _ = ray.wait(list(pending), num_returns=1)
            done += ray.wait([r for r in pending if r not in done], num_returns=len(pending) - len(done),
                             timeout=0)[0] if len(pending) > len(done) else []
            for ref in done:
                spec = pending.pop(ref)
                ready[spec.order] = _result(ray, ref, spec, retries)
            top_up()  # the workers read on while this process deduplicates and commits
            batch = []
            while committed + len(batch) in ready:
                batch.append(ready.pop(committed + len(batch)))
            if not batch:
                continue
            if seen is None:
                seen = _SeenIds(st, writer, spill)
            drops = seen.duplicates(st, batch)
            for staged in batch:
                _commit_piece(st, writer, run, staged, specs[staged.order], drops, lines)
                run["seconds"] += time.perf_counter() - t0
                t0 = time.perf_counter()
                advance(staged.counts["read"])
            committed += len(batch)
        # a worker killed mid-piece (then retried) left its temporaries; every task of this run has ended
        for rel_dir in (writer.shard_dir, writer.quarantine_dir):
            st.clean_temporaries(rel_dir)
    except BaseException:
        for ref in pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        for staged in ready.values():  # staged but not committed: temporaries the next run would remove anyway
            for rel in [t for t, _, _ in staged.shards] + ([staged.quarantine[0]] if staged.quarantine else []):
                with contextlib.suppress(Exception):
                    st.delete(rel)
        raise
    finally:
        if seen is not None:
            seen.close()
        shutil.rmtree(spill, ignore_errors=True)


@functools.cache
def _remote_stage_piece(ray: Any) -> Any:
    """``stage_piece`` as a Ray remote function, made once per process (Ray pickles and inspects the function
    each time one is made: a third of the driver's CPU on a small ingest)."""
    return ray.remote(stage_piece)


def _result(ray: Any, ref: Any, spec: PieceSpec, retries: int) -> Staged:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:  # the reader raised (a store that refuses writes, say)
        raise (exc.cause if exc.cause is not None else exc) from None
    except ray.exceptions.RayError as exc:  # the worker process died (SIGKILL, OOM) on every try
        kind = re.search(r"Worker exit type: (\w+)", str(exc))
        detail = f"Ray exit type {kind.group(1)}" if kind else type(exc).__name__
        raise IngestWorkerDied(
            f"the Ray worker reading {spec.inp.name} died before finishing it ({detail}: killed, out of memory "
            f"or crashed), {retries + 1} time(s); the inputs before it are committed. Re-run to resume from "
            f"there; if workers run out of memory, use fewer --workers"
        ) from None


class _SeenIds:
    """The corpus's committed doc_ids in a DuckDB table (spilled to disk past ``memory_limit``, never all in
    this process's memory as objects): loaded once from the committed shards, grown by each batch."""

    def __init__(self, st: Store, writer: ShardWriter, spill: str, memory_limit: str = DEDUP_MEMORY) -> None:
        import duckdb

        self.con = duckdb.connect(config={"temp_directory": spill, "memory_limit": memory_limit, "threads": 1,
                                          "preserve_insertion_order": False})
        self.con.execute("CREATE TABLE seen (doc_id VARCHAR)")
        files = [e["name"] for e in writer.manifest["shards"] if e["rows"]]
        if not files:
            return
        from curate.query import _file_list

        if st.is_local:
            paths = [st.uri_of(f"{writer.shard_dir}/{n}") for n in files]
            self.con.execute(f"INSERT INTO seen SELECT doc_id FROM read_parquet({_file_list(paths)})")
        else:  # DuckDB reads object stores only through an extension: stream the ids through pyarrow
            import pyarrow.dataset as ds

            stored = ds.dataset([st.path(f"{writer.shard_dir}/{n}") for n in files], filesystem=st.fs,
                                format="parquet")
            self.con.register("stored_ids", stored.scanner(columns=["doc_id"]).to_reader())
            self.con.execute("INSERT INTO seen SELECT doc_id FROM stored_ids")
            self.con.unregister("stored_ids")

    def close(self) -> None:
        self.con.close()

    def duplicates(self, st: Store, batch: list[Staged]) -> dict[str, np.ndarray]:
        """Rows of the batch's staged shards whose doc_id is committed already or earlier in the batch
        (``{staged temporary: row numbers}``, shards without any absent); the others' ids join ``seen``.

        Each piece has no duplicates inside itself (its worker dropped them)."""
        staged = [(tmp, rows) for s in batch for tmp, rows, _ in s.shards if rows]
        if not staged:
            return {}
        parts = []  # the batch's ids (a few pieces' worth) in memory; the corpus's stay in DuckDB
        for i, (tmp, _) in enumerate(staged):
            with st.fs.open_input_file(st.path(tmp)) as f:
                ids = pq.read_table(f, columns=["doc_id"]).column("doc_id")
            parts.append(pa.table({"doc_id": ids, "ord": pa.array(np.full(len(ids), i, dtype=np.int32)),
                                   "r": pa.array(np.arange(len(ids), dtype=np.int64))}))
        con = self.con
        con.register("batch_ids", pa.concat_tables(parts))
        try:
            earlier = "row_number() OVER (PARTITION BY doc_id ORDER BY ord, r) > 1" if len(staged) > 1 else "false"
            con.execute(f"CREATE OR REPLACE TEMP TABLE flagged AS SELECT ord, r, doc_id, "
                        f"{earlier} OR doc_id IN (SELECT doc_id FROM seen) AS dup FROM batch_ids")
            rows = con.execute("SELECT ord, r FROM flagged WHERE dup ORDER BY ord, r").fetchnumpy()
            con.execute("INSERT INTO seen SELECT doc_id FROM flagged WHERE NOT dup")
        finally:
            con.unregister("batch_ids")
        out: dict[str, np.ndarray] = {}
        if len(rows["r"]):
            ords = np.asarray(rows["ord"])
            rs = np.asarray(rows["r"], dtype=np.int64)
            for o in np.unique(ords):
                out[staged[int(o)][0]] = rs[ords == o]
        return out


def _commit_piece(st: Store, writer: ShardWriter, run: dict[str, Any], staged: Staged, spec: PieceSpec,
                  drops: dict[str, np.ndarray], lines: dict[int, int]) -> None:
    """Drop a piece's cross-worker duplicates (rewriting only the shards that hold some), then commit it.

    A byte range's quarantine positions count from its first line: the lines of the input before it
    are added (rewriting its small quarantine file), and the run's position records the line and byte
    reached, so a rerun resumes at the next range."""
    counts = dict(staged.counts)
    shards = []
    for tmp, rows, nbytes in staged.shards:
        drop = drops.get(tmp)
        if drop is None or not len(drop):
            shards.append((tmp, rows, nbytes))
            continue
        shards.append(_rewrite_without(st, writer, tmp, drop))
        counts["duplicates"] += rows - shards[-1][1]
        counts["kept"] -= rows - shards[-1][1]
        counts["bytes_kept"] -= nbytes - shards[-1][2]
    writer.count(run, staged.input_idx, counts, staged.reasons)
    run["worker_cpu_seconds"] = round(run.get("worker_cpu_seconds", 0.0) + staged.cpu_seconds, 3)
    quarantine = staged.quarantine
    if spec.start is not None:
        before = spec.lines_before if spec.lines_before is not None else lines[spec.input_idx]
        if quarantine is not None and before:
            quarantine = _shift_positions(st, quarantine, before)
        lines[spec.input_idx] = before + staged.position
    if spec.last:
        run["position"] = [staged.input_idx + 1, 0]
        run.pop("position_byte", None)
    elif spec.stop is not None:  # a Parquet row range: the position is the input's own row, as read whole
        run["position"] = [staged.input_idx, staged.position]
        run.pop("position_byte", None)
    else:
        run["position"] = [staged.input_idx, lines[spec.input_idx]]
        run["position_byte"] = [staged.input_idx, lines[spec.input_idx], spec.end]
    writer.commit_staged(run, shards, quarantine)


def _shift_positions(st: Store, quarantine: tuple[str, int], lines: int) -> tuple[str, int]:
    """The staged quarantine file with ``lines`` added to every position (a new temporary; the old one removed)."""
    tmp, rows = quarantine
    with st.fs.open_input_file(st.path(tmp)) as f:
        table = pq.read_table(f)
    i = table.schema.get_field_index("position")
    table = table.set_column(i, table.schema.field(i), pc.add(table.column(i), lines))
    out = temp_name(tmp.removesuffix(".tmp").rsplit(".", 1)[0])
    with st.fs.open_output_stream(st.path(out)) as stream:
        pq.write_table(table, stream, compression="zstd")
    st.delete(tmp)
    return out, rows


def _rewrite_without(st: Store, writer: ShardWriter, tmp: str, drop: np.ndarray) -> tuple[str, int, int]:
    """A new staged shard holding ``tmp``'s rows except ``drop`` (same writer settings); ``tmp`` is removed."""
    with st.fs.open_input_file(st.path(tmp)) as f:
        table = pq.read_table(f)
    keep = np.ones(table.num_rows, dtype=bool)
    keep[drop] = False
    table = table.filter(pa.array(keep))
    out = temp_name(tmp.removesuffix(".tmp").rsplit(".", 1)[0])
    if table.num_rows:
        with st.fs.open_output_stream(st.path(out)) as stream:
            w = doc_writer(stream)
            w.write_table(table, row_group_size=writer.row_group_rows)
            w.close()
    st.delete(tmp)
    return out, table.num_rows, int(pc.sum(table.column("n_bytes")).as_py() or 0)
