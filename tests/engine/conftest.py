"""Engine fixtures: a multi-shard store of real documents and one local Ray for the session."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate import ingest
from curate.ingestion import FieldMap


@pytest.fixture(scope="module")
def ray_local():
    # module scope: forked DataLoader workers in later test folders crash in a process that holds Ray
    from curate.execute import init_ray

    ray = init_ray(num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture
def sharded_store(tmp_path: Path, real_docs, write_jsonl) -> Path:
    """~300 real documents in 6 shards of 50."""
    path = write_jsonl(tmp_path / "docs.jsonl", [{"id": d["id"], "text": d["text"], "domain": d["domain"]} for d in real_docs[:300]])
    store = tmp_path / "store"
    ingest([path], store, "c", shard_rows=50, fields=FieldMap())
    return store
