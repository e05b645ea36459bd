"""Shared fixtures: real documents from the embedded corpus, fresh stores, and JSONL writers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from curate.embedded import embedded_corpus
from curate.embedded import write_jsonl as write_jsonl_file


@pytest.fixture(scope="session")
def corpus_paths() -> dict[str, Path]:
    return embedded_corpus()


@pytest.fixture(scope="session")
def real_docs(corpus_paths: dict[str, Path]) -> list[dict[str, Any]]:
    """A few real documents from every domain (id, text, domain, source, url)."""
    table = pq.read_table(corpus_paths["heldout"], columns=["id", "text", "domain", "source", "url"])
    out: list[dict[str, Any]] = []
    for domain in sorted(set(table.column("domain").to_pylist())):
        rows = table.filter(pc.equal(table.column("domain"), domain)).slice(0, 40)
        out.extend(rows.to_pylist())
    return out


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray (2 CPUs) for one test module.

    Module scope: forked DataLoader workers in later test folders crash in a process that holds Ray.
    """
    from curate.execute import init_ray

    ray = init_ray(num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def write_jsonl():
    """``write_jsonl(path, records, raw_lines={index: b"raw"})``: raw bytes go before record ``index``."""
    return write_jsonl_file


@pytest.fixture(scope="session")
def make_real_store(tmp_path_factory, real_docs):
    """``make_real_store(shard_rows)``: a fresh store of the real docs (id, text, domain) as corpus ``c``."""
    from curate import ingest

    def make(shard_rows: int) -> Path:
        tmp = tmp_path_factory.mktemp("real-store")
        path = write_jsonl_file(tmp / "d.jsonl", [{"id": d["id"], "text": d["text"], "domain": d["domain"]}
                                                  for d in real_docs])
        ingest([path], tmp / "store", "c", shard_rows=shard_rows, progress=False)
        return tmp / "store"

    return make
