"""Rolling shard writer with an exactly-once commit protocol.

Rows stream into a temporary Parquet file. A *commit* (1) renames the shard
into place, (2) writes the quarantine records gathered since the last commit,
(3) records the input position reached and the running counts in the corpus
manifest (:mod:`curate.ingestion.manifest`: a log entry per commit, a checkpoint
now and then). The manifest is the source of truth: on restart, files it does
not list are orphans from a crash between (1) and (3) and are removed, and the
readers resume from the recorded position — no document is written twice and
none is skipped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curate import faults
from curate.ingestion.manifest import ManifestLog, add_counts
from curate.ingestion.schema import DOC_SCHEMA, QUARANTINE_SCHEMA
from curate.store import Store, is_environment_fault, temp_name


def doc_writer(stream: Any, compression_level: int | None = None) -> pq.ParquetWriter:
    """A Parquet writer of document shards (every shard is written with these settings)."""
    return pq.ParquetWriter(
        stream,
        DOC_SCHEMA,
        compression="zstd",
        compression_level=compression_level,
        write_statistics=["doc_id", "corpus", "domain", "source", "n_bytes"],
    )


class ShardWriter:
    """Writes ``shards/<corpus>/part-NNNNN.parquet`` files of bounded rows/bytes."""

    def __init__(
        self,
        store: Store,
        corpus: str,
        manifest: dict[str, Any],
        *,
        shard_rows: int,
        shard_bytes: int,
        row_group_rows: int,
        compression_level: int | None = None,
    ) -> None:
        self.store = store
        self.corpus = corpus
        self.manifest = manifest
        self.shard_rows = shard_rows
        self.shard_bytes = shard_bytes
        self.row_group_rows = row_group_rows
        self.compression_level = compression_level
        self._log = ManifestLog(store, corpus, manifest)
        self._writer: pq.ParquetWriter | None = None
        self._stream: Any = None
        self._tmp: str | None = None
        self._rows = 0
        self._bytes = 0
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._quarantine: list[pa.Table] = []

    # ------------------------------------------------------------ manifest
    @property
    def shard_dir(self) -> str:
        return self.store.shards_dir(self.corpus)

    @property
    def quarantine_dir(self) -> str:
        return self.store.quarantine_dir(self.corpus)

    def _next_name(self, kind: str) -> str:
        return Store.shard_name(len(self.manifest[kind]))

    def count(self, run: dict[str, Any], idx: int, delta: dict[str, int], reasons: dict[str, int]) -> None:
        """Add one piece's counts to ``run`` and to its input ``idx`` (recorded at the next commit)."""
        add_counts(run, idx, delta, reasons)
        self._log.touched(idx)

    def remove_orphans(self) -> int:
        """Delete temporaries and files the manifest does not list (left by a crash)."""
        n = 0
        for rel_dir, kind in ((self.shard_dir, "shards"), (self.quarantine_dir, "quarantine")):
            n += self.store.clean_temporaries(rel_dir)
            listed = {e["name"] for e in self.manifest[kind]}
            for rel in self.store.list_files(rel_dir):
                if rel.rsplit("/", 1)[1] not in listed:
                    self.store.delete(rel)
                    n += 1
        return n

    # --------------------------------------------------------------- write
    def add(self, docs: pa.Table, quarantine: pa.Table | None) -> None:
        if quarantine is not None and quarantine.num_rows:
            self._quarantine.append(quarantine)
        if docs.num_rows == 0:
            return
        self._pending.append(docs)
        self._pending_rows += docs.num_rows
        self._rows += docs.num_rows
        self._bytes += pa.compute.sum(docs.column("n_bytes")).as_py() or 0
        if self._pending_rows >= self.row_group_rows:
            self._flush_pending()

    def should_commit(self) -> bool:
        return self._rows >= self.shard_rows or self._bytes >= self.shard_bytes

    @contextlib.contextmanager
    def _writing(self, rel: str) -> Iterator[None]:
        """A filesystem that refuses the shard (permissions, no space) stops the ingest with one clear error."""
        try:
            yield
        except OSError as exc:
            if is_environment_fault(exc):
                raise self.store.write_error(rel, exc) from exc
            raise

    def _flush_pending(self) -> None:
        if not self._pending:
            return
        table = pa.concat_tables([t.cast(DOC_SCHEMA) for t in self._pending])
        self._pending, self._pending_rows = [], 0
        name = self._next_name("shards")
        with self._writing(f"{self.shard_dir}/{name}"):
            if self._writer is None:
                self._tmp = temp_name(f"{self.shard_dir}/{name}")
                self.store.fs.create_dir(self.store.path(self.shard_dir), recursive=True)
                self._stream = self.store.fs.open_output_stream(self.store.path(self._tmp))
                self._writer = doc_writer(self._stream, self.compression_level)
            self._writer.write_table(table, row_group_size=self.row_group_rows)

    def commit(self, run: dict[str, Any]) -> None:
        """Make everything added so far durable and record ``run``'s progress with it."""
        if run["status"] == "done" and not self.manifest["shards"] and self._writer is None:
            # an empty shard keeps the docs view defined when every record was refused
            self._pending.append(DOC_SCHEMA.empty_table())
        self._flush_pending()
        if self._writer is not None:
            name = self._next_name("shards")
            with self._writing(f"{self.shard_dir}/{name}"):
                self._writer.close()
                self._stream.close()
                self.store.fs.move(self.store.path(self._tmp), self.store.path(f"{self.shard_dir}/{name}"))
            faults.point("ingest.after_shard_rename")
            self.manifest["shards"].append({"name": name, "rows": self._rows, "bytes": self._bytes, "run": run["id"]})
            self._writer = self._stream = self._tmp = None
        if not self._quarantine and run["status"] == "done" and not self.manifest["quarantine"]:
            # an empty file keeps the quarantine view defined for clean corpora
            self._quarantine.append(QUARANTINE_SCHEMA.empty_table())
        if self._quarantine:
            table = pa.concat_tables([t.cast(QUARANTINE_SCHEMA) for t in self._quarantine])
            name = self._next_name("quarantine")
            with self.store.atomic_output(f"{self.quarantine_dir}/{name}") as out:
                pq.write_table(table, out, compression="zstd")
            self.manifest["quarantine"].append({"name": name, "rows": table.num_rows, "run": run["id"]})
            self._quarantine = []
        self._rows = self._bytes = 0
        self._log.commit(run)
        faults.point("ingest.after_commit")

    def commit_staged(self, run: dict[str, Any], shards: list[tuple[str, int, int]],
                      quarantine: tuple[str, int] | None) -> None:
        """Commit one input piece staged by a worker: rename its shards (``(temporary, rows, bytes)``) and its
        quarantine file (``(temporary, rows)``) into place, then record ``run``'s progress in the manifest.

        The same protocol as :meth:`commit`: a crash before the manifest is written leaves files it does
        not list, which :meth:`remove_orphans` deletes, and the piece is read again.
        """
        for tmp, rows, nbytes in shards:
            if rows == 0:
                self.store.delete(tmp)
                continue
            name = self._next_name("shards")
            with self._writing(f"{self.shard_dir}/{name}"):
                self.store.fs.move(self.store.path(tmp), self.store.path(f"{self.shard_dir}/{name}"))
            faults.point("ingest.after_shard_rename")
            self.manifest["shards"].append({"name": name, "rows": rows, "bytes": nbytes, "run": run["id"]})
        if quarantine is not None:
            tmp, rows = quarantine
            name = self._next_name("quarantine")
            with self._writing(f"{self.quarantine_dir}/{name}"):
                self.store.fs.move(self.store.path(tmp), self.store.path(f"{self.quarantine_dir}/{name}"))
            self.manifest["quarantine"].append({"name": name, "rows": rows, "run": run["id"]})
        self._log.commit(run)
        faults.point("ingest.after_commit")

    def abort(self) -> None:
        """Drop uncommitted work (the temporary file) after an error."""
        if self._writer is not None:
            try:
                with contextlib.suppress(OSError):  # the error that stopped us is the one to report
                    self._writer.close()
                    self._stream.close()
            finally:
                with contextlib.suppress(OSError):  # a refused delete leaves a temporary the next run removes
                    self.store.delete(self._tmp)
        self._writer = self._stream = self._tmp = None
