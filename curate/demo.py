"""The demo pipeline on the embedded real corpus: ingest → query (→ score, as engines land)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from curate.ingestion import FieldMap, IngestSummary, ingest
from curate.store import Store

import os

#: The shipped corpus; CURATE_CORPUS_DIR points the demo (and tests) at another build of it.
CORPUS_DIR = Path(os.environ.get("CURATE_CORPUS_DIR", Path(__file__).resolve().parent / "corpus" / "data"))
#: The embedded corpus's columns: id, text, domain, source, license, url, title (license/title land in meta).
CORPUS_FIELDS = FieldMap(text="text", id="id", url="url", domain="domain", source="source")


@dataclass
class DemoResult:
    store: Store
    ingests: list[IngestSummary]


def embedded_corpus() -> dict[str, Path]:
    """Paths of the shipped splits: ``train`` (the pool) and ``heldout`` (the target set)."""
    splits = {name: CORPUS_DIR / f"{name}.parquet" for name in ("train", "heldout")}
    missing = [str(p) for p in splits.values() if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"embedded corpus missing ({', '.join(missing)}): rebuild it with `python -m curate.corpus.build`"
        )
    return splits


def run_demo(store_path: str | Path, *, fresh: bool = False, progress: bool | None = None) -> DemoResult:
    """Ingest the embedded corpus into ``store_path`` (corpora ``demo`` and ``heldout``)."""
    if fresh and Path(store_path).exists():
        shutil.rmtree(store_path)
    store = Store.open(store_path, create=True)
    splits = embedded_corpus()
    ingests = [
        ingest([splits["train"]], store, "demo", fields=CORPUS_FIELDS, progress=progress),
        ingest([splits["heldout"]], store, "heldout", fields=CORPUS_FIELDS, progress=progress),
    ]
    return DemoResult(store=store, ingests=ingests)
