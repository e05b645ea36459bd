"""The ``ingest`` flow: the library's ``ingest`` with a Prefect artifact."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from curate.errors import NoInputFiles
from curate.ingestion import FieldMap, ingest
from curate.render import markdown_table
from curate.store import Store


@flow(name="ingest", log_prints=True)
def ingest_flow(store: str, inputs: list[str], corpus: str = "default", format: str = "auto",
                fields: dict[str, Any] | None = None, max_doc_bytes: int = 16 << 20) -> dict[str, Any]:
    """Ingest ``inputs`` into ``corpus``; idempotent, resumable. Landing directories with no files yet are
    not an error on a schedule: the run creates the store and ends with nothing to do."""
    try:
        s = ingest(inputs, store, corpus, fields=FieldMap(**(fields or {})), format=format,
                   max_doc_bytes=max_doc_bytes, progress=False)
    except NoInputFiles as exc:
        Store.open(store, create=True)  # later steps (score, mixtures) find an empty store, not a missing one
        print(f"{corpus}: {exc}; nothing to ingest this time")
        return {"corpus": corpus, "status": "no-inputs", "read": 0}
    counts = markdown_table(["read", "kept", "quarantined", "duplicates", "MB", "seconds"],
                            [[s.read, s.kept, s.quarantined, s.duplicates, f"{s.bytes_kept / 1e6:.1f}", f"{s.seconds:.1f}"]])
    reasons = markdown_table(["reason", "records"], sorted(s.reasons.items())) if s.reasons else []
    create_markdown_artifact("\n".join([f"## curate ingest `{corpus}`", "",
                                        f"status: **{s.status}**{' (resumed)' if s.resumed else ''}", "", *counts,
                                        *([""] + reasons if reasons else [])]) + "\n", key="curate-ingest")
    print(f"{corpus}: read {s.read} = kept {s.kept} + quarantined {s.quarantined} + duplicates {s.duplicates}")
    return s.to_dict()
