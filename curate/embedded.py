"""The embedded real corpus that ships with curate, and ingesting it into a store."""

from __future__ import annotations

import os
from pathlib import Path

from curate.ingestion import FieldMap, IngestSummary, ingest
from curate.store import Store

#: The shipped corpus; CURATE_CORPUS_DIR points the demo (and tests) at another build of it.
CORPUS_DIR = Path(os.environ.get("CURATE_CORPUS_DIR", Path(__file__).resolve().parent / "corpus" / "data"))
#: The embedded corpus's columns: id, text, domain, source, license, url, title (license/title land in meta).
CORPUS_FIELDS = FieldMap(text="text", id="id", url="url", domain="domain", source="source")


def embedded_corpus() -> dict[str, Path]:
    """Paths of the shipped splits: ``train`` (the pool) and ``heldout`` (the target set)."""
    splits = {name: CORPUS_DIR / f"{name}.parquet" for name in ("train", "heldout")}
    missing = [str(p) for p in splits.values() if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"embedded corpus missing ({', '.join(missing)}): rebuild it with `python -m curate.corpus.build`"
        )
    return splits


def ingest_embedded(store: Store | str | Path, *, shard_rows: int = 4000, progress: bool | None = None) -> list[IngestSummary]:
    """Ingest the pool as corpus ``demo`` and the target set as corpus ``heldout``.

    Small shards (4,000 docs) give Ray workers enough units to share on a small corpus.
    """
    splits = embedded_corpus()
    return [
        ingest([splits["train"]], store, "demo", fields=CORPUS_FIELDS, shard_rows=shard_rows, progress=progress),
        ingest([splits["heldout"]], store, "heldout", fields=CORPUS_FIELDS, shard_rows=shard_rows, progress=progress),
    ]
