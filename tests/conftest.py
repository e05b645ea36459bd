"""Shared fixtures: real documents from the embedded corpus, fresh stores, and JSONL writers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from curate.embedded import embedded_corpus


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


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


def _write_jsonl(path: Path, records: list[Any], raw_lines: dict[int, bytes] | None = None) -> Path:
    raw_lines = raw_lines or {}
    with open(path, "wb") as f:
        for i, rec in enumerate(records):
            if i in raw_lines:
                f.write(raw_lines[i] + b"\n")
            f.write(json.dumps(rec, ensure_ascii=False).encode() + b"\n")
    return path


@pytest.fixture
def write_jsonl():
    """``write_jsonl(path, records, raw_lines={index: b"raw"})``: raw bytes go before record ``index``."""
    return _write_jsonl
