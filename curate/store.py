"""The store: one directory (or object-store prefix) that holds everything.

This module owns every path in the layout and every write into it. Writes are
atomic: data goes to a temporary name in the same directory and is renamed
into place, so a killed process never leaves a half file that a later run, or
a DuckDB reader, would trust.

On an object store (``s3://bucket/prefix``; settings in :mod:`curate.objstore`)
the rename is a server-side copy then a delete. Readers still never see a
partial file: the temporary's name ends in ``.tmp`` (no reader's ``*.parquet``
matches it), and the copy publishes the final key in one step, whole. Writing
the final key directly would not be safe: pyarrow's S3 stream has no abort, so
leaving its ``with`` block on an error completes the upload and publishes
whatever was written so far.

Layout::

    store.json                            format version, created, corpora
    shards/<corpus>/part-00000.parquet    documents
    shards/<corpus>/_manifest.json        ingest runs, positions, counts (a checkpoint)
    shards/<corpus>/_log/<seq>.json       one per commit since the checkpoint (curate.ingestion.manifest)
    quarantine/<corpus>/part-00000.parquet rejected records with location + reason
    features/<scorer>/<shard>.parquet     one file per input shard; its fingerprint in its metadata
    features/<scorer>/_manifest.json      per shard: fingerprint, rows, seconds, attempts, error, and
                                          the size and mtime the file had when checked (planning then
                                          lists the directory once and opens no file it vouches for)
    units/<scorer>/<shard>/<start>-<end>.parquet  finished units of a shard being scored (fingerprint +
                                          row range in the metadata); removed once the shard's file is
                                          assembled from them
    models/<name>/                        trained models + card
    mixtures/<name>/                      built mixtures
    experiments/<scale>/                  the selection experiment's report.md, results.json, plots
    report/                               `curate report`'s static pages (state.json: what they show)
    locks/<what>.lock                     who runs a writer now (flock; see curate.locks)
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pyarrow.fs as pafs

from curate.errors import ConfigError, CurateError
from curate.objstore import access_error

FORMAT_VERSION = 1
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
TMP_SUFFIX = ".tmp"  # temporaries never end in .parquet, so no glob picks them up


def temp_name(final: str) -> str:
    """A unique temporary name beside ``final``; renamed onto it when complete."""
    return f"{final}.{uuid.uuid4().hex[:12]}{TMP_SUFFIX}"


class StoreError(CurateError):
    """The store is missing, unreadable, or from an incompatible version."""


class StoreWriteError(StoreError):
    """The store refused a write for a reason only its owner can fix (permissions, space, read-only mount)."""


# errors that no retry of the same write can fix: every later write into that directory fails the same way
ENVIRONMENT_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def is_environment_fault(exc: BaseException) -> bool:
    """True for write errors caused by the store's filesystem (not by the data): fail fast, do not retry."""
    return isinstance(exc, StoreWriteError) or (isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS)


def check_name(kind: str, name: str) -> str:
    """Corpus, scorer, model and mixture names become directory names."""
    if not _NAME_RE.match(name):
        raise ConfigError(
            f"invalid {kind} name {name!r}: use letters, digits, '_', '-' or '.', "
            "starting with a letter or digit (at most 128 characters)"
        )
    return name


@contextlib.contextmanager
def _object_store_errors(uri: str) -> Iterator[None]:
    """Turn an object store's refusal (pyarrow raises a bare OSError) into a :class:`StoreError` saying what to set."""
    try:
        yield
    except OSError as exc:
        raise StoreError(access_error(uri, exc)) from None


@dataclass(frozen=True)
class Store:
    """A handle on a store directory; cheap to create, safe to pickle to workers."""

    uri: str
    fs: pafs.FileSystem
    root: str

    # ------------------------------------------------------------------ open
    @classmethod
    def open(cls, uri: str | os.PathLike[str], *, create: bool = False) -> Store:
        """Open the store at ``uri`` (a local path or a ``pyarrow.fs`` URI such as ``s3://bucket/prefix``).

        With ``create=True`` a missing store is initialised; otherwise a missing
        store is an error that says how to make one.
        """
        uri_s = os.fspath(uri)
        remote = "://" in uri_s
        # an object store is first reached here: a refusal (keys, endpoint, bucket) says what to set
        with _object_store_errors(uri_s) if remote else contextlib.nullcontext():
            if remote:
                fs, root = pafs.FileSystem.from_uri(uri_s)
            else:
                fs, root = pafs.LocalFileSystem(), str(Path(uri_s).expanduser().resolve())
            store = cls(uri=uri_s, fs=fs, root=root.rstrip("/"))
            meta = store.read_json("store.json")
            if meta is None and create:
                try:
                    store.fs.create_dir(store.root, recursive=True)
                except OSError as exc:
                    if not is_environment_fault(exc):
                        raise
                    raise StoreWriteError(
                        f"cannot create the store {store.uri_of()}: {os.strerror(exc.errno)}. Choose a store path "
                        "where you may write (or make its parent directory writable) and re-run; nothing was written"
                    ) from None
                store.write_json(
                    "store.json",
                    {
                        "format": FORMAT_VERSION,
                        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                        "corpora": {},
                    },
                )
                return store
        if meta is None:
            raise StoreError(
                f"no curate store at {uri_s!r}: run `curate ingest ... --store {uri_s}` to create one"
            )
        fmt = meta.get("format")
        if not isinstance(fmt, int) or fmt > FORMAT_VERSION:
            raise StoreError(
                f"store {uri_s!r} has format {fmt!r}, newer than this curate supports "
                f"({FORMAT_VERSION}): upgrade curate to read it"
            )
        return store

    @classmethod
    def of(cls, store: Store | str | os.PathLike[str], *, create: bool = False) -> Store:
        """``store`` itself when it is a :class:`Store`, else :meth:`open` it: what every function taking
        "a store or its path" starts with."""
        return store if isinstance(store, Store) else cls.open(store, create=create)

    def damaged_hint(self, message: str) -> str:
        """What to do when an error (DuckDB's; pyarrow's on an object store) names a file inside the store ('' when none)."""
        if f"{self.root}/" not in message:
            return ""
        if f"{self.root}/features/" in message:
            return ("\nA feature file in the store is damaged: re-run `curate score` for that scorer, "
                    "which recomputes exactly the files that do not check out")
        return "\nA file in the store is damaged: restore it from a backup or another copy of the store"

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    # ----------------------------------------------------------------- paths
    def path(self, *parts: str) -> str:
        """Filesystem path (for ``self.fs``) of a store-relative path."""
        return "/".join([self.root, *parts])

    def uri_of(self, *parts: str) -> str:
        """A path other tools (DuckDB, pyarrow.dataset) can open."""
        if self.is_local:
            return self.path(*parts)
        scheme = self.uri.split("://", 1)[0]
        return f"{scheme}://{self.path(*parts)}"

    @staticmethod
    def shard_name(index: int) -> str:
        return f"part-{index:05d}.parquet"

    def shards_dir(self, corpus: str) -> str:
        return f"shards/{check_name('corpus', corpus)}"

    def quarantine_dir(self, corpus: str) -> str:
        return f"quarantine/{check_name('corpus', corpus)}"

    def features_dir(self, scorer: str) -> str:
        return f"features/{check_name('scorer', scorer)}"

    def models_dir(self, name: str) -> str:
        return f"models/{check_name('model', name)}"

    def mixtures_dir(self, name: str) -> str:
        return f"mixtures/{check_name('mixture', name)}"

    def experiments_dir(self, scale: str = "") -> str:
        """Where ``curate experiment`` copies its report (report.md, results.json, plots) for the browser;
        without ``scale``, the folder of every scale's."""
        return f"experiments/{check_name('experiment scale', scale)}" if scale else "experiments"

    # ---------------------------------------------------------------- reads
    def exists(self, rel: str) -> bool:
        return self.fs.get_file_info(self.path(rel)).type != pafs.FileType.NotFound

    def list_files(self, rel_dir: str, suffix: str = ".parquet") -> list[str]:
        """Committed files (never temporaries) in a store directory, sorted, as store-relative paths."""
        return [f"{rel_dir}/{n}" for n in sorted(self.stat_files(rel_dir, suffix))]

    def stat_files(self, rel_dir: str, suffix: str = ".parquet") -> dict[str, tuple[int, int | None]]:
        """Committed files in a store directory: name -> (size, mtime_ns), from one listing (no file is opened)."""
        info = self.fs.get_file_info(pafs.FileSelector(self.path(rel_dir), allow_not_found=True))
        return {i.base_name: (i.size, i.mtime_ns) for i in info
                if i.type == pafs.FileType.File and i.base_name.endswith(suffix)}

    def list_dirs(self, rel_dir: str) -> list[str]:
        info = self.fs.get_file_info(pafs.FileSelector(self.path(rel_dir), allow_not_found=True))
        return sorted(i.base_name for i in info if i.type == pafs.FileType.Directory)

    def read_bytes(self, rel: str) -> bytes | None:
        try:
            with self.fs.open_input_stream(self.path(rel)) as f:
                return f.read()
        except FileNotFoundError:
            return None

    def read_json(self, rel: str) -> Any:
        data = self.read_bytes(rel)
        if data is None:
            return None
        try:
            return json.loads(data)
        except json.JSONDecodeError as exc:
            # curate writes atomically, so a damaged file was changed outside it; deleting a manifest
            # would orphan the shards it lists, so the advice is to restore, never to remove
            raise StoreError(f"{self.uri_of(rel)} is not valid JSON ({exc}): it was changed outside curate; "
                             "restore it from a backup or another copy of the store") from exc

    def damaged(self, rel: str, exc: BaseException) -> StoreError:
        """The message a user sees when a store file (a document shard, say) cannot be read back."""
        return StoreError(f"{self.uri_of(rel)} is damaged or unreadable ({type(exc).__name__}: {exc}): it was "
                          "changed outside curate; restore it from a backup or another copy of the store (or "
                          "ingest the original inputs into a new store)")

    def size(self, rel: str) -> int:
        return self.fs.get_file_info(self.path(rel)).size or 0

    # --------------------------------------------------------------- writes
    @contextlib.contextmanager
    def atomic_output(self, rel: str) -> Iterator[IO[bytes]]:
        """A writable stream that appears at ``rel`` only if the block succeeds.

        A filesystem that refuses the write (permissions, no space) raises :class:`StoreWriteError`
        naming the directory; whatever was written stays under a temporary name no reader globs.
        """
        final = self.path(rel)
        parent = final.rsplit("/", 1)[0]
        tmp = temp_name(final)
        try:
            self.fs.create_dir(parent, recursive=True)
            with self.fs.open_output_stream(tmp) as out:
                yield out
            self.fs.move(tmp, final)
        except BaseException as exc:
            with contextlib.suppress(Exception):
                self.fs.delete_file(tmp)
            if isinstance(exc, OSError) and is_environment_fault(exc):
                raise self.write_error(rel, exc) from exc
            raise

    def write_error(self, rel: str, exc: OSError) -> StoreWriteError:
        """The message a user sees when the store's filesystem refuses a write: what, where, what to do."""
        where = self.uri_of(rel.rsplit("/", 1)[0]) if "/" in rel else self.uri_of()
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        return StoreWriteError(
            f"cannot write {self.uri_of(rel)}: {reason} ({where}). Make that directory writable "
            "(or free space) and re-run: finished work is kept and skipped, and no partial file is visible"
        )

    def write_bytes(self, rel: str, data: bytes) -> None:
        with self.atomic_output(rel) as out:
            out.write(data)

    def write_json(self, rel: str, obj: Any, *, indent: int | None = 1) -> None:
        """``obj`` as JSON, keys sorted; ``indent=None`` for state rewritten often (json's C encoder runs only
        without an indent: a corpus manifest rewritten per committed piece cost more CPU than the commit)."""
        self.write_bytes(rel, (json.dumps(obj, indent=indent, sort_keys=True, default=str) + "\n").encode())

    def delete(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_file(self.path(rel))

    def delete_dir(self, rel: str) -> None:
        """Remove a store directory and everything under it (nothing when it is not there)."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_dir(self.path(rel))

    def clean_temporaries(self, rel_dir: str, of: str | None = None) -> int:
        """Remove temporaries a killed writer left behind (only those of the file named ``of``, if given)."""
        info = self.fs.get_file_info(pafs.FileSelector(self.path(rel_dir), allow_not_found=True))
        n = 0
        for i in info:
            if (i.type == pafs.FileType.File and i.base_name.endswith(TMP_SUFFIX)
                    and (of is None or i.base_name.startswith(f"{of}."))):
                self.fs.delete_file(i.path)
                n += 1
        return n

    # -------------------------------------------------------------- catalog
    def meta(self) -> dict[str, Any]:
        return self.read_json("store.json") or {}

    def corpora(self) -> list[str]:
        """Corpora that have at least one committed shard."""
        return [c for c in self.list_dirs("shards") if self.list_files(f"shards/{c}")]

    def feature_tables(self) -> list[str]:
        return [s for s in self.list_dirs("features") if self.list_files(f"features/{s}")]

    def register_corpus(self, corpus: str, info: dict[str, Any]) -> None:
        meta = self.meta()
        meta.setdefault("corpora", {}).setdefault(corpus, {}).update(info)
        self.write_json("store.json", meta)
