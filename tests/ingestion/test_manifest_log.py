"""The corpus manifest as a checkpoint plus a log entry per commit (issue 22, "metadata that scales").

Real ingests of real text into a real store; a real child process SIGKILLed after a commit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curate import ingest
from curate.ingestion import manifest as mf
from curate.store import Store, StoreError
from tests.ingestion.test_resume import _big_input, _check_exact, _run_ingest_subprocess


@pytest.fixture
def writes(monkeypatch) -> list[tuple[str, int]]:
    """(store-relative path, bytes) of every JSON file the store writes, in order."""
    seen: list[tuple[str, int]] = []
    real = Store.write_json

    def spy(self, rel, obj, *, indent=1):
        real(self, rel, obj, indent=indent)
        seen.append((rel, self.size(rel)))

    monkeypatch.setattr(Store, "write_json", spy)
    return seen


def test_a_commit_writes_a_small_log_entry_however_large_the_manifest_grows(store_dir, tmp_path, real_docs,
                                                                          writes, monkeypatch):
    monkeypatch.setattr(mf, "CHECKPOINT_EVERY", 16)
    path = _big_input(tmp_path, real_docs, 3000)
    s = ingest([path], store_dir, "c", shard_rows=25, row_group_rows=25, progress=False)
    assert s.status == "done" and s.kept == 3000 and s.shards == 120
    entries = [n for rel, n in writes if "/_log/" in rel]
    checkpoints = [n for rel, n in writes if rel.endswith("/_manifest.json")]
    # 120 commits: the first and every 16th a checkpoint, the last one too; the rest log entries
    assert len(entries) + len(checkpoints) == 120 and len(checkpoints) == 1 + 120 // 16 + 1
    assert max(entries) < 1500 and max(entries) < checkpoints[-2] / 5  # a few hundred bytes, not the manifest
    assert checkpoints[-1] > 120 * 60  # the checkpoint holds every shard
    assert not (store_dir / "shards" / "c" / "_log").exists()  # the finished run's checkpoint covers everything
    assert mf.load_manifest(Store.open(store_dir), "c") == json.loads(
        (store_dir / "shards" / "c" / "_manifest.json").read_text())


def test_a_run_killed_between_checkpoints_resumes_from_the_checkpoint_and_its_log(store_dir, tmp_path, real_docs):
    n = 3000
    path = _big_input(tmp_path, real_docs, n)
    crashed = _run_ingest_subprocess(store_dir, path, "ingest.after_commit:5")  # shards of 400: 8 commits
    assert crashed.returncode == -9, crashed.stderr
    st = Store.open(store_dir)
    checkpoint = json.loads((store_dir / "shards" / "c" / "_manifest.json").read_text())
    state = mf.load_manifest(st, "c")
    assert sorted(p.name for p in (store_dir / "shards" / "c" / "_log").iterdir()) == \
        [f"{i:012d}.json" for i in (2, 3, 4, 5)]  # the first commit was a checkpoint
    assert (len(checkpoint["shards"]), len(state["shards"])) == (1, 5) and state["log_upto"] == 5
    assert state["runs"][0]["position"][1] > checkpoint["runs"][0]["position"][1]
    assert state["runs"][0]["counts"]["kept"] == 5 * 400
    s = ingest([path], store_dir, "c", shard_rows=400, row_group_rows=100, progress=False)
    assert s.resumed and s.status == "done" and s.kept == n and s.read == s.kept + s.quarantined + s.duplicates
    _check_exact(store_dir, n)


def test_a_damaged_log_entry_is_named(store_dir, tmp_path, real_docs):
    path = _big_input(tmp_path, real_docs, 1200)
    assert _run_ingest_subprocess(store_dir, path, "ingest.after_commit:3").returncode == -9
    entry = store_dir / "shards" / "c" / "_log" / f"{3:012d}.json"
    entry.write_text(entry.read_text()[:40])
    with pytest.raises(StoreError, match=r"_log/000000000003\.json is not valid JSON"):
        ingest([path], store_dir, "c", shard_rows=400, row_group_rows=100, progress=False)


def test_a_manifest_written_whole_by_an_older_curate_is_read_and_continued(store_dir, tmp_path, real_docs):
    first = _big_input(tmp_path, real_docs, 600)
    ingest([first], store_dir, "c", shard_rows=200, progress=False)
    rel = store_dir / "shards" / "c" / "_manifest.json"
    old = json.loads(rel.read_text())
    old.pop("log_upto")  # what every manifest looked like before the log
    rel.write_text(json.dumps(old))
    more = Path(tmp_path / "more.jsonl")
    more.write_text("".join(json.dumps({"id": f"m{i}", "text": d["text"] + f" ({i})"}) + "\n"
                            for i, d in enumerate(real_docs[:50])))
    s = ingest([first, more], store_dir, "c", shard_rows=200, progress=False)
    assert s.status == "done" and s.kept == 50
    state = mf.load_manifest(Store.open(store_dir), "c")
    assert len(state["runs"]) == 2 and sum(e["rows"] for e in state["shards"]) == 650
