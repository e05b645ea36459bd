"""The embedded real corpus that ships with curate, and ingesting it into a store."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

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
            f"embedded corpus missing ({', '.join(missing)}): rebuild it with `make corpus` (python -m tools.corpus.build, from a checkout)"
        )
    return splits


#: Damage the demo injects into a JSON-lines copy of real documents, to show quarantine at work.
MESSY_LINES: dict[int, bytes] = {
    3: b'{"id": "broken", "text": "an unterminated record',
    10: b'["a JSON array", "is not a document"]',
    17: b'{"id": "no-text", "title": "a record without its text field"}',
    24: b'{"id": "numeric", "text": 1234}',
    31: b'{"id": "latin-1", "text": "caf\xe9 written in latin-1"}',
    38: b'{"id": "nul", "text": "binary\\u0000junk"}',
    45: b'{"id": "blank", "text": "   "}',
}


def write_messy_sample(path: Path, n: int = 300) -> Path:
    """JSON lines of ``n`` held-out documents with ``MESSY_LINES`` and two repeated ids mixed in."""
    import pyarrow.parquet as pq

    rows = pq.read_table(embedded_corpus()["heldout"], columns=["id", "text", "domain", "source"]).slice(0, n).to_pylist()
    rows += rows[:2]  # duplicates: same ids again
    return write_jsonl(path, rows, raw_lines=MESSY_LINES)


def write_jsonl(path: Path, records: list[Any], raw_lines: dict[int, bytes] | None = None) -> Path:
    """Write ``records`` as JSON lines; ``raw_lines[i]`` (raw bytes) goes in before record ``i``."""
    import json

    raw_lines = raw_lines or {}
    with open(path, "wb") as f:
        for i, rec in enumerate(records):
            if i in raw_lines:
                f.write(raw_lines[i] + b"\n")
            f.write(json.dumps(rec, ensure_ascii=False).encode() + b"\n")
    return path


def ingest_embedded(store: Store | str | Path, *, shard_rows: int = 4000, progress: bool | None = None) -> list[IngestSummary]:
    """Ingest the pool as corpus ``demo``, the target set as ``heldout``, and a damaged copy as ``messy``.

    Small shards (4,000 docs) give Ray workers enough units to share on a small corpus.
    """
    splits = embedded_corpus()
    st = Store.of(store, create=True)
    messy = Path(st.path("messy-sample.jsonl")) if st.is_local else None
    if messy and not messy.exists():  # written once: a rewrite would be a new input to ingest
        write_messy_sample(messy)
    return [
        ingest([splits["train"]], st, "demo", fields=CORPUS_FIELDS, shard_rows=shard_rows, progress=progress),
        ingest([splits["heldout"]], st, "heldout", fields=CORPUS_FIELDS, shard_rows=shard_rows, progress=progress),
        *([ingest([messy], st, "messy", fields=CORPUS_FIELDS, progress=progress)] if messy else []),
    ]
