"""The engine's shard work: which shards a scorer still owes, and scoring one shard exactly once.

A feature file ``features/<scorer>/<corpus>--part-NNNNN.parquet`` is *done*
when it exists and the fingerprint in its Parquet metadata equals
hash(input shard identity, scorer name, version, config, model hash). The file
carries its own proof, so a crash between writing it and updating the
manifest loses nothing, and a changed scorer version, config or model makes
exactly its own files stale.

This module knows nothing of Prefect or Ray: ``score_shard`` is what a Ray
actor (or a plain loop) calls with a loaded scorer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curate.ingestion.writer import MANIFEST
from curate.scoring import Scorer, check_output
from curate.store import Store, StoreError, is_environment_fault

log = logging.getLogger(__name__)


FINGERPRINT_KEY = b"curate.fingerprint"
SCORER_KEY = b"curate.scorer"
BATCH_ROWS = 1024


@dataclass(frozen=True)
class WorkItem:
    """One (input shard × scorer) unit: paths only, never data."""

    corpus: str
    shard: str  # store-relative input path
    output: str  # store-relative feature path
    rows: int
    fingerprint: str


@dataclass
class ShardResult:
    output: str
    status: str  # done | failed | skipped
    rows: int = 0
    seconds: float = 0.0
    error: str | None = None
    attempts: int = 1
    fatal: bool = False  # the store refused the write: later shards would fail the same way


    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def feature_path(store: Store, scorer_name: str, corpus: str, shard_name: str) -> str:
    """Store-relative path of the feature file a scorer writes for one input shard (one file per shard)."""
    return f"{store.features_dir(scorer_name)}/{corpus}--{shard_name}"


def shard_identity(store: Store, corpus: str) -> dict[str, dict[str, Any]]:
    """Input shards of ``corpus`` with what identifies their content (from the ingest manifest)."""
    manifest = store.read_json(f"{store.shards_dir(corpus)}/{MANIFEST}") or {"shards": []}
    return {e["name"]: e for e in manifest["shards"]}


def plan(store: Store, scorer_name: str, scorer_fingerprint: str, corpora: Iterable[str] | None = None) -> tuple[list[WorkItem], list[WorkItem]]:
    """(todo, done) work items for one scorer over the given corpora (default: all)."""
    todo, done = [], []
    for corpus in corpora or store.corpora():
        for name, entry in sorted(shard_identity(store, corpus).items()):
            ident = json.dumps([corpus, name, entry["rows"], entry["bytes"], entry["run"]])
            fp = hashlib.sha256(f"{ident}|{scorer_fingerprint}".encode()).hexdigest()[:20]
            item = WorkItem(
                corpus=corpus,
                shard=f"{store.shards_dir(corpus)}/{name}",
                output=feature_path(store, scorer_name, corpus, name),
                rows=entry["rows"],
                fingerprint=fp,
            )
            (done if is_done(store, item) else todo).append(item)
    return todo, done


def is_done(store: Store, item: WorkItem) -> bool:
    if not store.exists(item.output):
        return False
    try:
        with store.fs.open_input_file(store.path(item.output)) as f:
            md = pq.read_metadata(f)
    except (OSError, pa.ArrowException):
        return False  # unreadable: recompute
    meta = md.metadata or {}
    return meta.get(FINGERPRINT_KEY) == item.fingerprint.encode() and md.num_rows == item.rows


def score_shard(store: Store, scorer: Scorer, item: WorkItem, batch_rows: int = BATCH_ROWS) -> ShardResult:
    """Score one shard with a set-up scorer and write its feature file atomically.

    Raises on scorer errors (the caller decides about retries); rows out == rows in is enforced.
    """

    t0 = time.perf_counter()
    columns = ["doc_id", *getattr(scorer, "input_columns", ("text",))]
    schema = scorer.schema.with_metadata(
        {FINGERPRINT_KEY: item.fingerprint.encode(), SCORER_KEY: f"{scorer.name}=={scorer.version}".encode()}
    )
    rows = 0
    with store.atomic_output(item.output) as out:
        with pq.ParquetWriter(out, schema, compression="zstd") as writer:
            for batch in _input_batches(store, item.shard, columns, batch_rows):
                scored = check_output(scorer, batch, scorer.score(batch))
                writer.write_batch(scored)
                rows += batch.num_rows
        if rows != item.rows:
            raise RuntimeError(f"{item.shard}: scored {rows} rows but the shard holds {item.rows}")
    return ShardResult(output=item.output, status="done", rows=rows, seconds=time.perf_counter() - t0)


def _input_batches(store: Store, shard: str, columns: list[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
    """The shard's batches; a shard that cannot be read back is named, with what to do (the scorer's errors pass)."""
    try:
        with store.fs.open_input_file(store.path(shard)) as src:
            yield from pq.ParquetFile(src).iter_batches(batch_size=batch_rows, columns=columns)
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
    """
    path = f"{store.features_dir(scorer_name)}/{MANIFEST}"
    try:
        manifest = store.read_json(path) or {"scorer": scorer_name, "shards": {}}
    except StoreError:  # a report, not the truth: rebuilt from this run and the files found done
        log.warning("%s is damaged: rebuilding it from the feature files", store.uri_of(path))
        manifest = {"scorer": scorer_name, "shards": {}}
    unchanged = json.dumps(manifest, sort_keys=True, default=str)
    manifest["scorer_fingerprint"] = scorer_fingerprint
    manifest["config"] = config
    for item in done:
        entry = manifest["shards"].get(item.output.rsplit("/", 1)[1])
        if entry is None or entry.get("fingerprint") != item.fingerprint or entry.get("status") != "done":
            manifest["shards"][item.output.rsplit("/", 1)[1]] = {
                "input": item.shard, "fingerprint": item.fingerprint, "status": "done", "rows": item.rows,
                "seconds": None, "attempts": None, "error": None,
            }
    for r in results:
        item = items[r.output]
        manifest["shards"][r.output.rsplit("/", 1)[1]] = {
            "input": item.shard,
            "fingerprint": item.fingerprint,
            "status": r.status,
            "rows": r.rows,
            "seconds": round(r.seconds, 3),
            "attempts": r.attempts,
            "error": r.error,
        }
    if json.dumps(manifest, sort_keys=True, default=str) != unchanged:  # a run with nothing to do writes nothing
        store.write_json(path, manifest)
    return manifest
