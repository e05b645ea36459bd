"""The engine's shard work: which shards a scorer still owes, and scoring one shard exactly once.

A feature file ``features/<scorer>/<corpus>--part-NNNNN.parquet`` is *done*
when it exists and the fingerprint in its Parquet metadata equals
hash(input shard identity, scorer name, version, config, model hash). The file
carries its own proof, so a crash between writing it and updating the
manifest loses nothing, and a changed scorer version, config or model makes
exactly its own files stale.

Planning lists the feature directory once and reads a footer only for a file
the manifest cannot vouch for: the manifest records each verified file's size
and modification time, and a listed file with those and the expected
fingerprint is done without being opened (a file written, replaced or damaged
since has another size or time, and its footer is read).

A shard is scored in *units* of about ``unit_rows`` documents (whole input row
groups; a larger row group is cut into ranges). Each finished unit is written
atomically to ``units/<scorer>/<corpus>--part-NNNNN/<start>-<end>.parquet``
with the shard's fingerprint and its row range in its metadata, so a killed
worker loses at most the unit it was in: the retry or rerun keeps the units
that check out (fingerprint, range and row count; anything else is
recomputed). When all units are there they are copied, row group by row
group, into the shard's feature file, and removed. Every run takes that path,
so a resumed shard's file is byte-identical to an uninterrupted one's.

This module knows nothing of Prefect or Ray: ``score_shard`` is what a Ray
actor (or a plain loop) calls with a loaded scorer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curate import faults
from curate.ingestion.manifest import MANIFEST, load_manifest
from curate.scoring import Scorer, check_output
from curate.store import Store, StoreError, is_environment_fault

log = logging.getLogger(__name__)


FINGERPRINT_KEY = b"curate.fingerprint"
SCORER_KEY = b"curate.scorer"
UNIT_KEY = b"curate.unit"  # "<start>-<end>": the rows of the input shard a unit file holds
BATCH_ROWS = 1024
UNIT_ROWS = 4096  # documents per unit: what a killed worker can lose of a shard
UNITS_DIR = "units"  # beside features/: nothing that reads a feature directory sees them


@dataclass(frozen=True)
class WorkItem:
    """One (input shard × scorer) unit: paths only, never data."""

    corpus: str
    shard: str  # store-relative input path
    output: str  # store-relative feature path
    rows: int
    fingerprint: str
    found: tuple[int, int] | None = None  # (size, mtime_ns) of the output as planning listed it, when done


@dataclass
class ShardResult:
    output: str
    status: str  # done | failed | skipped
    rows: int = 0
    seconds: float = 0.0
    error: str | None = None
    attempts: int = 1
    fatal: bool = False  # the store refused the write: later shards would fail the same way
    resumed: int = 0  # rows taken from units an earlier attempt finished

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def feature_path(store: Store, scorer_name: str, corpus: str, shard_name: str) -> str:
    """Store-relative path of the feature file a scorer writes for one input shard (one file per shard)."""
    return f"{store.features_dir(scorer_name)}/{corpus}--{shard_name}"


def shard_identity(store: Store, corpus: str) -> dict[str, dict[str, Any]]:
    """Input shards of ``corpus`` with what identifies their content (from the ingest manifest)."""
    manifest = load_manifest(store, corpus) or {"shards": []}
    return {e["name"]: e for e in manifest["shards"]}


def plan(store: Store, scorer_name: str, scorer_fingerprint: str, corpora: Iterable[str] | None = None) -> tuple[list[WorkItem], list[WorkItem]]:
    """(todo, done) work items for one scorer over the given corpora (default: all).

    One listing of the feature directory; a footer is read only for a listed file the manifest cannot vouch for.
    """
    listed = store.stat_files(store.features_dir(scorer_name))
    vouched = _verified(store, scorer_name)
    todo, done = [], []
    for corpus in corpora or store.corpora():
        for name, entry in sorted(shard_identity(store, corpus).items()):
            ident = json.dumps([corpus, name, entry["rows"], entry["bytes"], entry["run"]])
            fp = hashlib.sha256(f"{ident}|{scorer_fingerprint}".encode()).hexdigest()[:20]
            output = feature_path(store, scorer_name, corpus, name)
            found = listed.get(output.rsplit("/", 1)[1])
            item = WorkItem(corpus=corpus, shard=f"{store.shards_dir(corpus)}/{name}", output=output,
                            rows=entry["rows"], fingerprint=fp, found=found)
            if found is None:
                todo.append(item)
            elif vouched.get(output.rsplit("/", 1)[1]) == (fp, item.rows, *found) or is_done(store, item):
                done.append(item)
            else:
                todo.append(item)
    return todo, done


def _verified(store: Store, scorer_name: str) -> dict[str, tuple[str, int, int, int]]:
    """Feature file name -> (fingerprint, rows, size, mtime_ns) the manifest recorded when it checked the file."""
    try:
        manifest = store.read_json(f"{store.features_dir(scorer_name)}/{MANIFEST}") or {}
    except StoreError:  # damaged: every file's footer is read instead (update_manifest says so and rebuilds it)
        return {}
    return {name: (e.get("fingerprint"), e.get("rows"), e["size"], e["mtime_ns"])
            for name, e in (manifest.get("shards") or {}).items()
            if e.get("status") == "done" and e.get("size") is not None and e.get("mtime_ns") is not None}


def is_done(store: Store, item: WorkItem) -> bool:
    """The feature file exists and its footer carries the item's fingerprint and row count."""
    return _carries(store, item.output, item.fingerprint, item.rows)


def _carries(store: Store, rel: str, fingerprint: str, rows: int, unit: str | None = None) -> bool:
    try:
        with store.fs.open_input_file(store.path(rel)) as f:
            md = pq.read_metadata(f)
    except (OSError, pa.ArrowException):
        return False  # missing or unreadable: recompute
    meta = md.metadata or {}
    return (meta.get(FINGERPRINT_KEY) == fingerprint.encode() and md.num_rows == rows
            and (unit is None or meta.get(UNIT_KEY) == unit.encode()))


def units_dir(item: WorkItem) -> str:
    """Store-relative directory of a shard's finished units (``units/<scorer>/<corpus>--part-NNNNN``)."""
    rel_dir, name = item.output.rsplit("/", 1)
    return f"{UNITS_DIR}/{rel_dir.rsplit('/', 1)[1]}/{name.removesuffix('.parquet')}"


def unit_ranges(md: pq.FileMetaData, unit_rows: int) -> list[tuple[int, int]]:
    """Row ranges [start, end) of a shard's units: consecutive whole row groups of at most ``unit_rows`` rows
    together, a larger row group cut into ``unit_rows`` pieces."""
    ranges: list[tuple[int, int]] = []
    start = pos = 0
    for g in range(md.num_row_groups):
        n = md.row_group(g).num_rows
        if pos > start and pos - start + n > unit_rows:
            ranges.append((start, pos))
            start = pos
        if n > unit_rows:
            ranges += [(a, min(a + unit_rows, pos + n)) for a in range(pos, pos + n, unit_rows)]
            start = pos + n
        pos += n
    if pos > start:
        ranges.append((start, pos))
    return ranges


def score_shard(store: Store, scorer: Scorer, item: WorkItem, batch_rows: int = BATCH_ROWS,
                unit_rows: int = UNIT_ROWS, on_unit: Callable[[int], None] | None = None) -> ShardResult:
    """Score one shard with a set-up scorer, unit by unit, and write its feature file atomically.

    Units an earlier attempt finished (and that check out) are kept, not scored again. Raises on scorer
    errors (the caller decides about retries); rows out == rows in is enforced. ``on_unit(rows)`` is called
    after each unit, scored or kept, with the rows of the shard done so far (a progress bar's tick).
    """

    t0 = time.perf_counter()
    columns = ["doc_id", *getattr(scorer, "input_columns", ("text",))]
    meta = {FINGERPRINT_KEY: item.fingerprint.encode(), SCORER_KEY: f"{scorer.name}=={scorer.version}".encode()}
    udir = units_dir(item)
    units: list[str] = []
    resumed = 0
    with _shard_file(store, item.shard) as pf:
        if pf.metadata.num_rows != item.rows:
            raise RuntimeError(f"{item.shard}: holds {pf.metadata.num_rows} rows but its manifest says {item.rows}")
        for start, end in unit_ranges(pf.metadata, max(1, unit_rows)):
            rel, span = f"{udir}/{start:010d}-{end:010d}.parquet", f"{start}-{end}"
            units.append(rel)
            if _carries(store, rel, item.fingerprint, end - start, span):
                resumed += end - start
            else:
                schema = scorer.schema.with_metadata({**meta, UNIT_KEY: span.encode()})
                with store.atomic_output(rel) as out, pq.ParquetWriter(out, schema, compression="zstd") as writer:
                    for batch in _unit_batches(store, item.shard, pf, start, end, columns, batch_rows):
                        writer.write_batch(check_output(scorer, batch, scorer.score(batch)))
                        faults.point("score.batch")
                faults.point("score.unit")
            if on_unit:
                on_unit(end)
    _assemble(store, item, units, scorer.schema.with_metadata(meta))
    faults.point("score.assembled")
    store.delete_dir(udir)
    return ShardResult(output=item.output, status="done", rows=item.rows, seconds=time.perf_counter() - t0,
                       resumed=resumed)


def _assemble(store: Store, item: WorkItem, units: list[str], schema: pa.Schema) -> None:
    """The shard's feature file from its units, row group by row group (the same bytes however often it was resumed)."""
    with store.atomic_output(item.output) as out, pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for rel in units:
            try:
                with store.fs.open_input_file(store.path(rel)) as f:
                    pf = pq.ParquetFile(f)
                    for g in range(pf.num_row_groups):
                        writer.write_table(pf.read_row_group(g))
            except (OSError, pa.ArrowException) as exc:
                if is_environment_fault(exc):
                    raise
                store.delete(rel)  # its footer checked out but its data does not: the retry scores it again
                raise RuntimeError(f"{store.uri_of(rel)} (a finished unit of {item.shard}) could not be read back "
                                   f"({type(exc).__name__}: {exc}); it was removed and is scored again on retry") from exc


@contextlib.contextmanager
def _shard_file(store: Store, shard: str) -> Iterator[pq.ParquetFile]:
    try:
        src = store.fs.open_input_file(store.path(shard))
        pf = pq.ParquetFile(src)
    except (OSError, pa.ArrowException) as exc:
        raise store.damaged(shard, exc) from exc
    with src:
        yield pf


def _unit_batches(store: Store, shard: str, pf: pq.ParquetFile, start: int, end: int, columns: list[str],
                  batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Rows [start, end) of the shard in batches; a shard that cannot be read back is named, with what to do
    (the scorer's errors pass)."""
    groups, pos, first = [], 0, None
    for g in range(pf.metadata.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        if pos < end and pos + n > start:
            groups.append(g)
            first = pos if first is None else first
        pos += n
    try:
        pos = first or 0
        for batch in pf.iter_batches(batch_size=batch_rows, row_groups=groups, columns=columns):
            lo, hi = max(start - pos, 0), min(end - pos, batch.num_rows)
            pos += batch.num_rows
            if hi > lo:
                yield batch.slice(lo, hi - lo) if (lo, hi) != (0, batch.num_rows) else batch
            if pos >= end:
                return
    except (OSError, pa.ArrowException) as exc:
        raise store.damaged(shard, exc) from exc


def failure(item: WorkItem, exc: BaseException, attempts: int) -> ShardResult:
    tb = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return ShardResult(output=item.output, status="failed", error=tb, attempts=attempts,
                       fatal=is_environment_fault(exc))


def update_manifest(store: Store, scorer_name: str, scorer_fingerprint: str, config: dict[str, Any],
                    results: list[ShardResult], items: dict[str, WorkItem],
                    done: Iterable[WorkItem] = ()) -> dict[str, Any]:
    """Record results in ``features/<scorer>/_manifest.json`` (a report; the files carry the truth).

    ``done`` are shards found complete on disk: a run killed between writing a file and
    reporting it left them out of the manifest, so they are entered here to keep it truthful.
    A done entry also records the file's size and mtime as listed, which lets the next
    :func:`plan` trust it without reading its footer.
    """
    path = f"{store.features_dir(scorer_name)}/{MANIFEST}"
    try:
        manifest = store.read_json(path) or {"scorer": scorer_name, "shards": {}}
    except StoreError:  # a report, not the truth: rebuilt from this run and the files found done
        log.warning("%s is damaged: rebuilding it from the feature files", store.uri_of(path))
        manifest = {"scorer": scorer_name, "shards": {}}
    before = (manifest.get("scorer_fingerprint"), manifest.get("config"))
    manifest["scorer_fingerprint"] = scorer_fingerprint
    manifest["config"] = json.loads(json.dumps(config, default=str))  # as it reads back, so equal compares equal
    changed = before != (manifest["scorer_fingerprint"], manifest["config"])
    shards = manifest["shards"]

    def enter(name: str, entry: dict[str, Any]) -> None:
        nonlocal changed
        if shards.get(name) != entry:
            shards[name], changed = entry, True

    for item in done:
        name = item.output.rsplit("/", 1)[1]
        entry = shards.get(name) or {}
        size, mtime_ns = item.found or (None, None)
        if (entry.get("fingerprint") != item.fingerprint or entry.get("status") != "done"
                or (entry.get("size"), entry.get("mtime_ns")) != (size, mtime_ns)):
            kept = entry if entry.get("fingerprint") == item.fingerprint else {}
            enter(name, {"seconds": kept.get("seconds"), "attempts": kept.get("attempts"), "error": None,
                         "input": item.shard, "fingerprint": item.fingerprint, "status": "done", "rows": item.rows,
                         "size": size, "mtime_ns": mtime_ns})
    listed = store.stat_files(store.features_dir(scorer_name)) if any(r.status == "done" for r in results) else {}
    for r in results:
        item = items[r.output]
        name = r.output.rsplit("/", 1)[1]
        size, mtime_ns = listed.get(name, (None, None)) if r.status == "done" else (None, None)
        enter(name, {
            "input": item.shard,
            "fingerprint": item.fingerprint,
            "status": r.status,
            "rows": r.rows,
            "seconds": round(r.seconds, 3),
            "attempts": r.attempts,
            "error": r.error,
            "size": size,
            "mtime_ns": mtime_ns,
        })
    if changed:  # a run with nothing to do writes nothing
        store.write_json(path, manifest)
    return manifest
