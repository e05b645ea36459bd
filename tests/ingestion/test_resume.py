"""Idempotent re-ingest and exactly-once resume after a SIGKILL at the worst moments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from curate import connect, ingest
from curate.ingestion.manifest import load_manifest
from curate.store import Store


def _big_input(tmp_path: Path, real_docs: list[dict], n: int = 3000) -> Path:
    path = tmp_path / "big.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            d = real_docs[i % len(real_docs)]
            f.write(json.dumps({"id": f"{i}", "text": d["text"], "domain": d["domain"]}) + "\n")
            if i % 500 == 7:
                f.write("{not json}\n")
    return path


def _run_ingest_subprocess(store: Path, path: Path, fault: str | None) -> subprocess.CompletedProcess:
    code = (
        "import sys; from curate import ingest; "
        f"ingest([{str(path)!r}], {str(store)!r}, 'c', shard_rows=400, row_group_rows=100, progress=False)"
    )
    env = dict(os.environ)
    if fault:
        env["CURATE_FAULT"] = fault
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


def _check_exact(store: Path, n: int) -> None:
    con = connect(store)
    total, distinct = con.execute("SELECT count(*), count(DISTINCT orig_id) FROM docs").fetchone()
    assert total == distinct == n
    assert con.execute("SELECT sum(count) FROM quarantine").fetchone()[0] == n // 500 + (1 if n % 500 > 7 else 0)


def test_reingest_same_input_is_a_no_op(store_dir, tmp_path, real_docs):
    path = _big_input(tmp_path, real_docs, 600)
    first = ingest([path], store_dir, "c", shard_rows=200)
    files = sorted(p.name for p in (store_dir / "shards" / "c").iterdir())
    again = ingest([path], store_dir, "c", shard_rows=200)
    assert again.status == "already-ingested" and again.kept == first.kept
    assert sorted(p.name for p in (store_dir / "shards" / "c").iterdir()) == files


def test_changed_input_adds_only_new_documents(store_dir, tmp_path, real_docs, write_jsonl):
    path = _big_input(tmp_path, real_docs, 300)
    ingest([path], store_dir, "c")
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"id": "new-1", "text": real_docs[0]["text"]}) + "\n")
    s = ingest([path], store_dir, "c")
    assert (s.kept, s.duplicates) == (1, 300)
    assert connect(store_dir).execute("SELECT count(*) FROM docs").fetchone()[0] == 301


@pytest.mark.parametrize("fault", ["ingest.after_commit:2", "ingest.after_shard_rename:3"])
def test_sigkill_mid_run_then_resume_is_exact(fault, store_dir, tmp_path, real_docs):
    n = 3000
    path = _big_input(tmp_path, real_docs, n)
    crashed = _run_ingest_subprocess(store_dir, path, fault)
    assert crashed.returncode == -9, crashed.stderr
    manifest = load_manifest(Store.open(store_dir), "c")
    assert manifest["runs"][0]["status"] == "running"
    s = ingest([path], store_dir, "c", shard_rows=400, row_group_rows=100)
    assert s.resumed and s.status == "done"
    assert s.read == s.kept + s.quarantined + s.duplicates
    assert s.kept == n and s.duplicates == 0
    _check_exact(store_dir, n)
    # no orphan or temporary file survives
    names = {p.name for p in (store_dir / "shards" / "c").iterdir()}
    listed = {e["name"] for e in json.loads((store_dir / "shards" / "c" / "_manifest.json").read_text())["shards"]}
    assert names == listed | {"_manifest.json"}  # the finished run's checkpoint holds everything: no log left


def test_new_files_in_a_landing_directory_are_the_only_ones_read(store_dir, tmp_path, real_docs, write_jsonl):
    landing = tmp_path / "landing"
    landing.mkdir()
    write_jsonl(landing / "a.jsonl", [{"id": f"a{i}", "text": d["text"]} for i, d in enumerate(real_docs[:20])])
    first = ingest([landing], store_dir, "c")
    assert first.kept == 20
    write_jsonl(landing / "b.jsonl", [{"id": f"b{i}", "text": d["text"]} for i, d in enumerate(real_docs[20:30])])
    second = ingest([landing], store_dir, "c")
    assert (second.read, second.kept, second.duplicates) == (10, 10, 0)  # a.jsonl was not read again
    assert [i["name"] for i in second.inputs] == [str(landing / "b.jsonl")]
    assert ingest([landing], store_dir, "c").status == "already-ingested"
    assert connect(store_dir).execute("SELECT count(*) FROM docs").fetchone()[0] == 30
