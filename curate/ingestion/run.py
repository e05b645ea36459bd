"""``ingest``: stream inputs into document shards; every record is kept, quarantined or a duplicate."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curate.docid import SeenIds, doc_digests, from_hex, to_hex
from curate.errors import ConfigError
from curate.ingestion.fields import FieldMap, validate
from curate.ingestion.manifest import empty_manifest, load_manifest
from curate.ingestion.readers import BATCH_ROWS, ReadContext, discover, read
from curate.ingestion.writer import ShardWriter
from curate.locks import default_timeout, store_lock
from curate.progress import progress as progress_bar
from curate.store import Store, check_name


@dataclass
class IngestSummary:
    """What an ingest did. ``read == kept + quarantined + duplicates`` always holds."""

    corpus: str
    run_id: str
    status: str  # "done" | "already-ingested"
    resumed: bool
    read: int = 0
    kept: int = 0
    quarantined: int = 0
    duplicates: int = 0
    bytes_kept: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    shards: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _counts() -> dict[str, Any]:
    return {"read": 0, "kept": 0, "quarantined": 0, "duplicates": 0, "bytes_kept": 0, "reasons": {}}


def _check_positive(name: str, value: int) -> int:
    if not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return value


def ingest(
    sources: list[Any] | Any,
    store: Store | str | os.PathLike[str],
    corpus: str = "default",
    *,
    fields: FieldMap | None = None,
    format: str = "auto",
    shard_rows: int = 50_000,
    shard_bytes: int = 256 << 20,
    row_group_rows: int = 4096,
    max_doc_bytes: int = 16 << 20,
    text_glob: str = "**/*",
    progress: bool | None = None,
    workers: int = 0,
    ray_address: str | None = None,
    retries: int = 1,
    piece_bytes: int = 32 << 20,
) -> IngestSummary:
    """Ingest JSONL (plain/.gz/.zst), Parquet, text directories or ``datasets`` objects into ``corpus``.

    Idempotent: the same inputs (paths, sizes, mtimes, mapping) ingested again
    do nothing. Interrupted runs resume from the last committed shard.

    ``workers=0`` (the default) reads every input in this process. ``workers=N`` spreads the
    inputs over N one-CPU Ray tasks (a local Ray, or the cluster at ``ray_address`` /
    ``RAY_ADDRESS``), see :mod:`curate.ingestion.distributed`: the same documents, ids,
    duplicates, quarantine rows and summary, committed per input piece in input order;
    a piece whose worker dies is retried ``retries`` times. Plain JSON lines files larger than
    ``piece_bytes`` are read in byte ranges of about that size (whole lines), Parquet files in ranges of
    whole row groups of about that many compressed bytes, other inputs whole.
    """
    fields = fields or FieldMap()
    check_name("corpus", corpus)
    for name, value in (("shard_rows", shard_rows), ("shard_bytes", shard_bytes),
                        ("row_group_rows", row_group_rows), ("max_doc_bytes", max_doc_bytes),
                        ("piece_bytes", piece_bytes)):
        _check_positive(name, value)
    if not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"workers must be 0 (this process) or a positive integer, got {workers!r}")
    if not fields.text:
        raise ConfigError("the text field name must not be empty (--text-field)")
    if fields.meta not in ("rest", "none"):
        raise ConfigError(f"meta must be 'rest' or 'none', got {fields.meta!r}")
    srcs = sources if isinstance(sources, (list, tuple)) else [sources]
    inputs = discover(list(srcs), format, text_glob)
    st = Store.of(store, create=True)
    # two ingests into one corpus would both write part-N and drop each other's shards as orphans:
    # the second waits (then finds its inputs done) or, with CURATE_LOCK_TIMEOUT, fails naming the first
    with store_lock(st, f"ingest-{corpus}", f"ingest into corpus {corpus!r} of {st.uri}", timeout=default_timeout()):
        return _ingest_locked(st, corpus, inputs, fields, format, shard_rows, shard_bytes, row_group_rows,
                              max_doc_bytes, progress, workers, ray_address, retries, piece_bytes)


def _ingest_locked(st: Store, corpus: str, inputs: list[Any], fields: FieldMap, format: str, shard_rows: int,
                   shard_bytes: int, row_group_rows: int, max_doc_bytes: int, progress: bool | None,
                   workers: int = 0, ray_address: str | None = None, retries: int = 1,
                   piece_bytes: int = 32 << 20) -> IngestSummary:
    shard_dir = st.shards_dir(corpus)
    manifest = load_manifest(st, corpus) or empty_manifest(corpus)
    config = {"fields": asdict(fields), "max_doc_bytes": max_doc_bytes, "format": format}
    input_fps = [i.fingerprint() for i in inputs]
    fingerprint = hashlib.sha256(json.dumps([corpus, config, input_fps], sort_keys=True).encode()).hexdigest()[:16]

    run = next((r for r in manifest["runs"] if r["fingerprint"] == fingerprint), None)
    if run is not None and run["status"] == "done":
        return _summary(run, "already-ingested", resumed=False, manifest=manifest)
    if run is None:
        # a scheduled ingest over a growing landing directory reads only the files it has not finished
        finished = {(i["name"], i["fingerprint"]) for r in manifest["runs"] if r["status"] == "done"
                    and r["config"] == config for i in r["inputs"]}
        fresh = [(i, fp) for i, fp in zip(inputs, input_fps) if (fp["name"], fp["fingerprint"]) not in finished]
        if not fresh:
            last = next(r for r in reversed(manifest["runs"]) if r["status"] == "done" and r["config"] == config)
            return _summary(last, "already-ingested", resumed=False, manifest=manifest)
        inputs, input_fps = [i for i, _ in fresh], [fp for _, fp in fresh]
    resumed = run is not None
    if run is None:
        run = {
            "id": uuid.uuid4().hex[:12],
            "fingerprint": fingerprint,
            "status": "running",
            "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "config": config,
            "inputs": [dict(fp, counts=_counts()) for fp in input_fps],
            "position": [0, 0],
            "counts": _counts(),
            "seconds": 0.0,
        }
        manifest["runs"].append(run)

    writer = ShardWriter(st, corpus, manifest, shard_rows=shard_rows, shard_bytes=shard_bytes,
                         row_group_rows=row_group_rows)
    writer.remove_orphans()
    ctx = ReadContext(corpus=corpus, fields=fields, max_doc_bytes=max_doc_bytes,
                      batch_rows=min(BATCH_ROWS, shard_rows))
    if workers:
        from curate.ingestion.distributed import ingest_on_ray

        try:
            with progress_bar(f"ingest {corpus}", unit="records", enabled=progress) as advance:
                ingest_on_ray(st, inputs, ctx, writer, run, workers=workers, ray_address=ray_address,
                              retries=retries, advance=advance, piece_bytes=piece_bytes)
            run["status"] = "done"
            run["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            writer.commit(run)
        except BaseException:
            writer.abort()
            raise
        st.register_corpus(corpus, {"shards": len(manifest["shards"]),
                                    "docs": sum(s["rows"] for s in manifest["shards"])})
        return _summary(run, "done", resumed=resumed, manifest=manifest)
    seen = _load_seen(st, shard_dir, manifest)
    t0 = time.perf_counter()
    try:
        with progress_bar(f"ingest {corpus}", unit="records", enabled=progress) as advance:
            for idx in range(run["position"][0], len(inputs)):
                skip = run["position"][1] if idx == run["position"][0] else 0
                for piece in read(inputs[idx], ctx, skip):
                    _take(piece, st, corpus, seen, writer, run, idx, max_doc_bytes)
                    run["position"] = [idx, piece.position]
                    run["seconds"] += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    if writer.should_commit():
                        writer.commit(run)
                    advance(piece.records)
                run["position"] = [idx + 1, 0]
        run["status"] = "done"
        run["seconds"] += time.perf_counter() - t0
        run["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        writer.commit(run)
    except BaseException:
        writer.abort()
        raise
    st.register_corpus(corpus, {"shards": len(manifest["shards"]), "docs": sum(s["rows"] for s in manifest["shards"])})
    return _summary(run, "done", resumed=resumed, manifest=manifest)


def _take(piece: Any, st: Store, corpus: str, seen: SeenIds, writer: ShardWriter, run: dict[str, Any],
          idx: int, max_doc_bytes: int) -> None:
    """Validate, dedup and hand one piece to the writer; update the run's counts."""
    docs, quarantine, delta, reasons = piece_docs(piece, corpus, seen, max_doc_bytes)
    writer.add(docs, quarantine)
    writer.count(run, idx, delta, reasons)


def piece_docs(piece: Any, corpus: str, seen: SeenIds,
               max_doc_bytes: int) -> tuple[pa.Table, pa.Table | None, dict[str, int], Counter]:
    """One piece's documents (validated, ids assigned, those ``seen`` before dropped), its quarantine
    records, and its counts (read, kept, quarantined, duplicates, bytes_kept) and quarantine reasons."""
    table, n_bytes = validate(piece.table, piece.quarantine, max_doc_bytes)
    texts = table.column("text").cast(pa.large_binary()).to_pylist()
    digests = doc_digests(corpus, table.column("orig_id").to_pylist(), texts)
    new = seen.add_new(digests)
    mask = pa.array(new, pa.bool_())
    kept = table.filter(mask)
    docs = pa.table(
        {
            "doc_id": pa.array(to_hex(digests[new]), pa.string()),
            "corpus": pa.array([corpus] * kept.num_rows, pa.string()),
            "orig_id": kept.column("orig_id"),
            "text": kept.column("text"),
            "domain": kept.column("domain"),
            "source": kept.column("source"),
            "url": kept.column("url"),
            "n_bytes": n_bytes.filter(mask),
            "meta": kept.column("meta"),
        }
    )
    q = piece.quarantine
    reasons: Counter = Counter()
    for r in q.rows:
        reasons[r["reason"]] += r["count"]
    delta = {
        "read": piece.records,
        "kept": docs.num_rows,
        "quarantined": q.records,
        "duplicates": table.num_rows - docs.num_rows,
        "bytes_kept": int(pa.compute.sum(docs.column("n_bytes")).as_py() or 0),
    }
    if delta["read"] != delta["kept"] + delta["quarantined"] + delta["duplicates"]:
        raise RuntimeError(f"ingest accounting broke on {piece.quarantine.input}: {delta}")  # a curate bug
    return docs, (q.table() if q.rows else None), delta, reasons


def _load_seen(st: Store, shard_dir: str, manifest: dict[str, Any]) -> SeenIds:
    """Ids already in the corpus, so a new run (or a resumed one) never writes a document twice."""
    seen = SeenIds()
    for entry in manifest["shards"]:
        rel = f"{shard_dir}/{entry['name']}"
        try:
            with st.fs.open_input_file(st.path(rel)) as f:
                for batch in pq.ParquetFile(f).iter_batches(columns=["doc_id"], batch_size=65536):
                    seen.add_new(from_hex(batch.column(0).to_pylist()))
        except (OSError, pa.ArrowException) as exc:
            raise st.damaged(rel, exc) from exc
    return seen


def _summary(run: dict[str, Any], status: str, resumed: bool, manifest: dict[str, Any]) -> IngestSummary:
    c = run["counts"]
    return IngestSummary(
        corpus=manifest["corpus"],
        run_id=run["id"],
        status=status,
        resumed=resumed,
        read=c["read"],
        kept=c["kept"],
        quarantined=c["quarantined"],
        duplicates=c["duplicates"],
        bytes_kept=c["bytes_kept"],
        reasons=dict(c["reasons"]),
        inputs=[{"name": i["name"], **{k: v for k, v in i["counts"].items()}} for i in run["inputs"]],
        shards=sum(1 for s in manifest["shards"] if s["run"] == run["id"]),
        seconds=round(run["seconds"], 3),
    )
