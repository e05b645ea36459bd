"""The store's DuckDB views for a store DuckDB cannot open itself (object stores), read through pyarrow.

DuckDB reaches S3 only through its ``httpfs`` extension, which it downloads on
first use (not possible offline, and a second set of credentials to configure).
Instead each view is a ``pyarrow.dataset`` over the store's own filesystem,
registered with DuckDB: DuckDB scans it lazily, pushing projections and filters
down into pyarrow, so memory stays flat whatever the store's size.

The views match :func:`curate.query.views_sql` (``docs``, ``quarantine``, one per
feature table, ``doc_features``), with two differences: the file list is a
snapshot taken at connect time (committed ``*.parquet`` files only, never
temporaries), and the views are temporary, because they name datasets that
live in this connection.
"""

from __future__ import annotations

from collections import defaultdict

import duckdb
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from curate.ingestion.schema import QUARANTINE_SCHEMA
from curate.store import Store
from curate.view_sql import RESERVED_VIEWS, doc_features_sql


def committed_files(store: Store, top: str) -> dict[str, list[str]]:
    """``top/<dir>/*.parquet`` files of the store, by ``<dir>``, as filesystem paths (one listing, not one per dir)."""
    info = store.fs.get_file_info(pafs.FileSelector(store.path(top), recursive=True, allow_not_found=True))
    prefix = store.path(top) + "/"
    out: dict[str, list[str]] = defaultdict(list)
    for i in info:
        rel = i.path[len(prefix):] if i.path.startswith(prefix) else ""
        parts = rel.split("/")
        # exactly what the local views' glob 'top/*/*.parquet' matches
        if i.type == pafs.FileType.File and len(parts) == 2 and parts[1].endswith(".parquet"):
            out[parts[0]].append(i.path)
    return {d: sorted(paths) for d, paths in sorted(out.items())}


def parquet_dataset(store: Store, paths: list[str]) -> ds.Dataset:
    """A dataset over ``paths`` whose schema is the union of every file's, like DuckDB's ``union_by_name``."""
    factory = ds.FileSystemDatasetFactory(store.fs, paths, ds.ParquetFileFormat())
    # every footer, not just the first file's: a file with an extra column must not lose it
    return factory.finish(factory.inspect(fragments=None))


def register_views(con: duckdb.DuckDBPyConnection, store: Store) -> None:
    """Define ``docs``, ``quarantine``, one view per feature table and ``doc_features`` on ``con``."""

    shards = [p for paths in committed_files(store, "shards").values() for p in paths]
    con.register("docs", parquet_dataset(store, shards))
    quarantine = [p for paths in committed_files(store, "quarantine").values() for p in paths]
    # an empty table keeps the view defined before any corpus has finished an ingest
    con.register("quarantine", parquet_dataset(store, quarantine) if quarantine else QUARANTINE_SCHEMA.empty_table())
    tables: dict[str, list[str]] = {}
    for name, paths in committed_files(store, "features").items():
        if name in RESERVED_VIEWS:
            continue
        dataset = parquet_dataset(store, paths)
        con.register(name, dataset)
        tables[name] = dataset.schema.names
    con.execute(doc_features_sql(tables, temp=True))

