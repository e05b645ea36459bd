"""Parquet, text directories and Hugging Face datasets go through the same accounting."""

from __future__ import annotations

from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate import connect, ingest
from curate.errors import ConfigError


def _count(store_dir: Path, corpus: str) -> int:
    return connect(store_dir).execute("SELECT count(*) FROM docs WHERE corpus = ?", [corpus]).fetchone()[0]


def test_parquet_with_bad_rows(store_dir, tmp_path, real_docs):
    texts = [d["text"] for d in real_docs[:20]] + [None, "", "nul\x00here"]
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": texts, "id": [str(i) for i in range(len(texts))]}), path, row_group_size=7)
    s = ingest([path], store_dir, "p")
    assert (s.read, s.kept) == (23, 20)
    assert s.reasons == {"missing_text": 1, "empty_text": 1, "nul_bytes": 1}
    rows = connect(store_dir).execute("SELECT unit, position, reason FROM quarantine ORDER BY position").fetchall()
    assert rows == [("row", 20, "missing_text"), ("row", 21, "empty_text"), ("row", 22, "nul_bytes")]


def test_parquet_with_wrong_schema_is_one_clear_entry(store_dir, tmp_path, real_docs):
    path = tmp_path / "wrong.parquet"
    pq.write_table(pa.table({"body": [d["text"] for d in real_docs[:10]]}), path)
    s = ingest([path], store_dir, "p")
    assert s.kept == 0 and s.quarantined == 10 and s.read == 10
    detail = connect(store_dir).execute("SELECT detail FROM quarantine").fetchone()[0]
    assert "no column 'text'" in detail and "body" in detail and "--text-field" in detail


def test_parquet_with_corrupt_footer(store_dir, tmp_path, real_docs):
    good = tmp_path / "a.parquet"
    pq.write_table(pa.table({"text": [d["text"] for d in real_docs[:5]]}), good)
    bad = tmp_path / "b.parquet"
    data = good.read_bytes()
    bad.write_bytes(data[:-12] + b"\x00" * 12)  # clobber the footer length + magic
    s = ingest([good, bad], store_dir, "p")
    assert s.kept == 5 and s.reasons == {"unreadable": 1}
    assert "not a readable Parquet file" in connect(store_dir).execute("SELECT detail FROM quarantine").fetchone()[0]


def test_text_directory(store_dir, tmp_path, real_docs):
    root = tmp_path / "texts"
    (root / "sub").mkdir(parents=True)
    for i, d in enumerate(real_docs[:5]):
        (root / ("sub" if i % 2 else "") / f"doc{i}.txt").write_text(d["text"], encoding="utf-8")
    (root / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (root / "blob.bin").write_bytes(b"\x00\x01\x02" * 10)
    s = ingest([root], store_dir, "t", format="text")
    assert s.kept == 5 and s.reasons == {"invalid_utf8": 1, "nul_bytes": 1}
    ids = {r[0] for r in connect(store_dir).execute("SELECT orig_id FROM docs").fetchall()}
    assert "sub/doc1.txt" in ids and "doc0.txt" in ids


def test_datasets_object_and_saved_directory(store_dir, tmp_path, real_docs):
    ds = datasets.Dataset.from_list([{"text": d["text"], "id": d["id"], "domain": d["domain"]} for d in real_docs[:30]])
    s1 = ingest(ds, store_dir, "hf")
    assert s1.kept == 30
    ds.save_to_disk(str(tmp_path / "saved"))
    s2 = ingest([tmp_path / "saved"], store_dir, "hf-disk")
    assert s2.kept == 30
    same = connect(store_dir).execute(
        "SELECT count(*) FROM docs a JOIN docs b USING (orig_id, text) WHERE a.corpus='hf' AND b.corpus='hf-disk'"
    ).fetchone()[0]
    assert same == 30


def test_iterable_dataset(store_dir, real_docs):
    ds = datasets.Dataset.from_list([{"text": d["text"]} for d in real_docs[:12]]).to_iterable_dataset()
    s = ingest(ds, store_dir, "it")
    assert s.kept == 12 and _count(store_dir, "it") == 12


def test_bad_config_is_refused_before_any_work(store_dir, tmp_path, write_jsonl, real_docs):
    path = write_jsonl(tmp_path / "x.jsonl", [{"text": real_docs[0]["text"]}])
    with pytest.raises(ConfigError, match="shard_rows"):
        ingest([path], store_dir, "c", shard_rows=0)
    with pytest.raises(ConfigError, match="invalid corpus name"):
        ingest([path], store_dir, "../escape")
    with pytest.raises(ConfigError, match="does not exist"):
        ingest([tmp_path / "missing.jsonl"], store_dir, "c")
    with pytest.raises(ConfigError, match="format"):
        ingest([tmp_path / "x.jsonl"], store_dir, "c", format="xml")
    assert not store_dir.exists()  # nothing was created


def test_empty_landing_directory(store_dir, tmp_path):
    """A directory with no files is no input: the CLI's ingest refuses it; the scheduled flow creates the store."""
    from curate.errors import NoInputFiles
    from curate.store import Store
    from flows.ingest import ingest_flow

    landing = tmp_path / "land"
    landing.mkdir()
    (landing / ".incoming.part").write_text("{}")  # hidden: a producer's file still being written
    with pytest.raises(NoInputFiles, match="no input files found in"):
        ingest([landing], store_dir, "web")
    assert not store_dir.exists()
    assert ingest_flow.fn(str(store_dir), [str(landing)], "web") == {"corpus": "web", "status": "no-inputs", "read": 0}
    assert Store.open(store_dir).corpora() == []  # the store exists, with nothing in it yet
