"""Engine fixtures: a multi-shard store of real documents (``ray_local`` is in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate import ingest
from curate.ingestion import FieldMap


@pytest.fixture
def sharded_store(tmp_path: Path, real_docs, write_jsonl) -> Path:
    """~300 real documents in 6 shards of 50."""
    path = write_jsonl(tmp_path / "docs.jsonl", [{"id": d["id"], "text": d["text"], "domain": d["domain"]} for d in real_docs[:300]])
    store = tmp_path / "store"
    ingest([path], store, "c", shard_rows=50, fields=FieldMap())
    return store
