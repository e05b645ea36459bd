"""Reliability fixtures: a small multi-shard store of real documents, child processes, DuckDB checks."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from curate import connect, ingest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def sharded_store(tmp_path: Path, real_docs, write_jsonl) -> Path:
    """300 real documents in 6 shards of 50 (corpus ``c``)."""
    path = write_jsonl(tmp_path / "docs.jsonl", [{"id": d["id"], "text": d["text"], "domain": d["domain"]}
                                                 for d in real_docs[:300]])
    ingest([path], tmp_path / "store", "c", shard_rows=50, progress=False)
    return tmp_path / "store"


def child(*args: str, env: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    """Start ``python -m tests.reliability._child <args>`` from the repository root."""
    return subprocess.Popen([sys.executable, "-m", "tests.reliability._child", *args], cwd=REPO,
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **popen)


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen]]:
    """Child processes a test starts; any still running at the end are SIGKILLed."""
    procs: list[subprocess.Popen] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
        for stream in (p.stdout, p.stderr):
            if stream:
                stream.close()


def one_row_per_doc(store: Path, table: str) -> int:
    """Every document has exactly one row in ``table`` (checked in DuckDB); returns the count."""
    con = connect(store)
    docs = con.execute("SELECT count(*) FROM docs").fetchone()[0]
    rows, distinct = con.execute(f'SELECT count(*), count(DISTINCT doc_id) FROM "{table}"').fetchone()
    assert rows == distinct == docs, (rows, distinct, docs)
    assert con.execute(f'SELECT count(*) FROM docs ANTI JOIN "{table}" USING (doc_id)').fetchone()[0] == 0
    return rows


def tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (relative path -> digest): equal before and after = untouched."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def prefect_outside_clirunner() -> None:
    """Run one trivial flow before any ``curate score`` through CliRunner.

    Prefect binds its log console to the stderr of the first flow run in a process; a CliRunner's
    stream is closed when its invocation ends, and the next flow's logging then recurses on it.
    """
    from prefect import flow

    @flow(name="reliability-warmup")
    def warmup() -> int:
        return 1

    warmup()
