"""Ingest on Ray (``workers=N``): the same store as the single-process path, and exactly once under SIGKILL.

Real Ray (a local one), real files, real child processes killed by ``CURATE_FAULT``; the store is
checked in DuckDB (``count(*)`` = ``count(DISTINCT doc_id)``) and against a single-process ingest of
the same inputs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate import connect, ingest
from curate.ingestion.manifest import load_manifest
from curate.store import Store
from tests.engine._procs import pids_with_env

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SHARD_ROWS = 150


def _inputs(tmp_path: Path, real_docs: list[dict], write_jsonl) -> tuple[Path, Path]:
    """A store's first input, then a landing directory whose files overlap each other and the first input.

    Overlaps (the same id in two files, the same text without an id) make duplicates across workers
    and against committed shards; bad lines, an over-long document and an empty text go to quarantine.
    """
    docs = [{"id": f"d{i}", "text": d["text"], "domain": d["domain"]} for i, d in enumerate(real_docs)]
    first = write_jsonl(tmp_path / "first.jsonl", docs[:60])
    land = tmp_path / "landing"
    land.mkdir()
    n = len(docs)
    spans = [(40, 200), (180, 260), (0, 30), (250, n)]  # each overlaps an earlier file or the first input
    for k, (lo, hi) in enumerate(spans):
        recs = list(docs[lo:hi])
        recs.insert(3, {"id": None, "text": docs[lo + 5]["text"]})  # an id-less twin: id from the text
        recs.insert(7, {"id": f"empty-{k}", "text": "  "})
        recs.insert(9, {"id": f"huge-{k}", "text": "x" * 5000})
        write_jsonl(land / f"part-{k}.jsonl", recs, raw_lines={2: b"{not json", 11: b"[1, 2]"})
    pq.write_table(pa.Table.from_pylist(docs[100:140] + docs[-10:]), land / "part-9.parquet")
    (land / "empty.jsonl").write_bytes(b"")
    return first, land


def _state(store: Path) -> dict:
    con = connect(store)
    ids = sorted(r[0] for r in con.execute("SELECT doc_id FROM docs").fetchall())
    total, distinct = con.execute("SELECT count(*), count(DISTINCT doc_id) FROM docs").fetchone()
    assert total == distinct
    quarantine = sorted(con.execute(
        "SELECT input, unit, position, count, reason, detail, raw FROM quarantine").fetchall(), key=repr)
    per_domain = con.execute("SELECT domain, count(*), sum(n_bytes) FROM docs GROUP BY 1 ORDER BY 1").fetchall()
    return {"ids": ids, "quarantine": quarantine, "per_domain": per_domain}


def _summary(s) -> dict:
    d = s.to_dict()
    return {k: d[k] for k in ("read", "kept", "quarantined", "duplicates", "bytes_kept", "reasons", "inputs")}


def _no_strays(store: Path, corpus: str = "c") -> None:
    """Every file in the corpus's folders is listed in its manifest: no temporary, no orphan."""
    manifest = json.loads((store / "shards" / corpus / "_manifest.json").read_text())
    assert {p.name for p in (store / "shards" / corpus).iterdir()} == \
        {e["name"] for e in manifest["shards"]} | {"_manifest.json"}
    assert {p.name for p in (store / "quarantine" / corpus).iterdir()} == {e["name"] for e in manifest["quarantine"]}


def _reference(tmp_path: Path, first: Path, land: Path) -> tuple[dict, dict]:
    ref = tmp_path / "reference"
    ingest([first], ref, "c", shard_rows=SHARD_ROWS, max_doc_bytes=4000, progress=False)
    s = ingest([land], ref, "c", shard_rows=SHARD_ROWS, max_doc_bytes=4000, progress=False)
    return _summary(s), _state(ref)


def test_workers_give_the_single_process_store(tmp_path, real_docs, write_jsonl, ray_local):
    first, land = _inputs(tmp_path, real_docs, write_jsonl)
    ref_summary, ref_state = _reference(tmp_path, first, land)
    assert ref_summary["duplicates"] > 50 and ref_summary["quarantined"] >= 20  # the inputs test what they should

    store = tmp_path / "store"
    ingest([first], store, "c", shard_rows=SHARD_ROWS, max_doc_bytes=4000, workers=2, progress=False)
    s = ingest([land], store, "c", shard_rows=SHARD_ROWS, max_doc_bytes=4000, workers=2, progress=False)
    assert s.status == "done" and not s.resumed
    assert s.read == s.kept + s.quarantined + s.duplicates
    assert _summary(s) == ref_summary  # per input too: read, kept, quarantined, duplicates, bytes, reasons
    assert _state(store) == ref_state  # same doc_ids, same quarantine rows (positions, reasons, raw)
    manifest = json.loads((store / "shards" / "c" / "_manifest.json").read_text())
    assert all(0 < e["rows"] <= SHARD_ROWS for e in manifest["shards"])
    assert [r["status"] for r in manifest["runs"]] == ["done", "done"]
    _no_strays(store)
    # the same inputs again: nothing to do, nothing touched
    again = ingest([land], store, "c", shard_rows=SHARD_ROWS, max_doc_bytes=4000, workers=2, progress=False)
    assert again.status == "already-ingested" and again.kept == s.kept
    # a new file in the landing directory: only it is read, its duplicates found in the committed shards
    kept_id = connect(store).execute("SELECT min(orig_id) FROM docs").fetchone()[0]
    write_jsonl(land / "part-z.jsonl", [{"id": "new", "text": "a new document"}, {"id": kept_id, "text": "dup"}])
    more = ingest([land], store, "c", shard_rows=SHARD_ROWS, max_doc_bytes=4000, workers=2, progress=False)
    assert (more.read, more.kept, more.duplicates) == (2, 1, 1)


def _child(store: Path, paths: list[Path], workers: int, fault: str | None) -> subprocess.CompletedProcess:
    code = (
        "from curate import ingest; "
        f"s = ingest({[str(p) for p in paths]!r}, {str(store)!r}, 'c', shard_rows={SHARD_ROWS}, "
        f"max_doc_bytes=4000, workers={workers}, ray_address='local', progress=False); print(s.status)"
    )
    return _child_code(code, fault)


def _child_code(code: str, fault: str | None) -> subprocess.CompletedProcess:
    marker = f"curate-test-{uuid.uuid4().hex}"
    env = {**os.environ, "CURATE_TEST_CHILD": marker}
    if fault:
        env["CURATE_FAULT"] = fault
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        _reap(marker)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _reap(marker: str) -> None:
    """SIGKILL what a killed driver left running: its local Ray (raylet, workers) inherited its environment.

    A dead machine takes its workers with it; here one could otherwise finish a staged temporary after
    the rerun has begun (harmless: never listed, removed by the next run; but the check below is strict).
    """
    for _ in range(50):
        found = pids_with_env(marker)
        for pid in found:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if not found:
            return
        time.sleep(0.2)


def _many_batches(tmp_path: Path, real_docs: list[dict], write_jsonl) -> list[Path]:
    """A small input (one read batch), then three of several batches each (a batch is at most ``SHARD_ROWS``
    documents) that each hold every document: most of them are duplicates across workers."""
    docs = [{"id": f"d{i}", "text": d["text"], "domain": d["domain"]} for i, d in enumerate(real_docs)]
    paths = [write_jsonl(tmp_path / "in-0.jsonl", docs[:100], raw_lines={5: b"{bad"})]
    for k in range(1, 4):
        recs = docs[k * 60:] + docs[: k * 60]
        paths.append(write_jsonl(tmp_path / f"in-{k}.jsonl", recs, raw_lines={5: b"{bad", 200: b"nope"}))
    return paths


def test_worker_sigkilled_mid_input_then_rerun_is_exact(tmp_path, real_docs, write_jsonl, ray_local):
    paths = _many_batches(tmp_path, real_docs, write_jsonl)
    ref = tmp_path / "reference"
    ref_summary = _summary(ingest(paths, ref, "c", shard_rows=SHARD_ROWS, max_doc_bytes=4000, progress=False))
    store = tmp_path / "store"
    # every worker process is killed at its second batch, on every retry: the run stops, nothing half-written
    crashed = _child(store, paths, workers=2, fault="ingest.worker_batch:2")
    assert crashed.returncode == 1, crashed.stderr[-2000:]
    assert "IngestWorkerDied" in crashed.stderr and "died before finishing it" in crashed.stderr
    manifest = load_manifest(Store.open(store), "c")
    if manifest is not None:  # the small first input was committed before the others died
        assert manifest["runs"][0]["status"] == "running"
    s = ingest(paths, store, "c", shard_rows=SHARD_ROWS, max_doc_bytes=4000, workers=2, progress=False)
    assert s.resumed and s.status == "done"
    assert _summary(s) == ref_summary
    assert _state(store) == _state(ref)
    _no_strays(store)


def test_worker_sigkilled_once_is_retried_and_the_run_finishes_exact(tmp_path, real_docs, write_jsonl, ray_local,
                                                                     monkeypatch):
    paths = _many_batches(tmp_path, real_docs, write_jsonl)
    ref = tmp_path / "reference"
    ref_summary = _summary(ingest(paths, ref, "c", shard_rows=SHARD_ROWS, max_doc_bytes=4000, progress=False))
    store, died = tmp_path / "store", tmp_path / "died"
    # the first worker to reach its second batch is killed; Ray runs its piece again on a fresh worker
    monkeypatch.setenv("CURATE_FAULT", "ingest.worker_batch:2")
    monkeypatch.setenv("CURATE_FAULT_ONCE", str(died))
    s = ingest(paths, store, "c", shard_rows=SHARD_ROWS, max_doc_bytes=4000, workers=2, retries=1, progress=False)
    assert died.exists()  # a worker did die mid-piece
    assert s.status == "done" and not s.resumed
    assert _summary(s) == ref_summary
    assert _state(store) == _state(ref)
    _no_strays(store)  # the dead worker's temporaries are gone


@pytest.mark.parametrize("fault", ["ingest.after_commit:2", "ingest.after_shard_rename:2"])
def test_driver_sigkilled_mid_run_then_rerun_is_exact(fault, tmp_path, real_docs, write_jsonl, ray_local):
    paths = _many_batches(tmp_path, real_docs, write_jsonl)
    ref = tmp_path / "reference"
    ref_summary = _summary(ingest(paths, ref, "c", shard_rows=SHARD_ROWS, max_doc_bytes=4000, progress=False))
    store = tmp_path / "store"
    crashed = _child(store, paths, workers=2, fault=fault)
    assert crashed.returncode == -9, crashed.stderr[-2000:]
    manifest = load_manifest(Store.open(store), "c")
    assert manifest["runs"][0]["status"] == "running" and manifest["runs"][0]["position"][0] >= 1
    # resumed on Ray after a commit, in this process after a rename: either path finishes the other's run
    workers = 2 if fault.startswith("ingest.after_commit") else 0
    s = ingest(paths, store, "c", shard_rows=SHARD_ROWS, max_doc_bytes=4000, workers=workers, progress=False)
    assert s.resumed and s.status == "done"
    assert _summary(s) == ref_summary
    assert _state(store) == _state(ref)
    _no_strays(store)


def _one_big_file(tmp_path: Path, real_docs: list[dict]) -> Path:
    """One JSON lines file of ~100 KB pieces' worth: duplicates far apart, bad, blank and over-long lines,
    an id-less twin, and no newline after the last line."""
    lines = []
    for i in range(900):
        d = real_docs[i % len(real_docs)]
        lines.append(json.dumps({"id": f"d{i % 500}", "text": d["text"], "domain": d["domain"]}))
        if i % 97 == 3:
            lines.append("{broken")
        if i % 131 == 5:
            lines.append("")
        if i % 211 == 7:
            lines.append(json.dumps({"id": f"long{i}", "text": "y" * 6000}))
        if i % 301 == 9:
            lines.append(json.dumps({"text": real_docs[0]["text"]}))
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_byte_ranges_of_one_file_give_the_single_process_store(tmp_path, real_docs, ray_local):
    path = _one_big_file(tmp_path, real_docs)
    ref = tmp_path / "reference"
    ref_summary = _summary(ingest([path], ref, "c", shard_rows=SHARD_ROWS, max_doc_bytes=4000, progress=False))
    store = tmp_path / "store"
    s = ingest([path], store, "c", shard_rows=SHARD_ROWS, max_doc_bytes=4000, workers=2, piece_bytes=64 << 10,
               progress=False)
    manifest = json.loads((store / "shards" / "c" / "_manifest.json").read_text())
    assert len(manifest["quarantine"]) > 5  # read in many ranges
    assert _summary(s) == ref_summary
    assert _state(store) == _state(ref)  # quarantine line numbers too: every range's are shifted right
    _no_strays(store)


def test_driver_sigkilled_between_byte_ranges_resumes_at_the_next_range(tmp_path, real_docs, ray_local):
    path = _one_big_file(tmp_path, real_docs)
    ref = tmp_path / "reference"
    ref_summary = _summary(ingest([path], ref, "c", shard_rows=SHARD_ROWS, max_doc_bytes=4000, progress=False))
    store = tmp_path / "store"
    code = (f"from curate import ingest; ingest([{str(path)!r}], {str(store)!r}, 'c', shard_rows={SHARD_ROWS}, "
            "max_doc_bytes=4000, workers=2, ray_address='local', piece_bytes=64 << 10, progress=False)")
    crashed = _child_code(code, "ingest.after_commit:4")
    assert crashed.returncode == -9, crashed.stderr[-2000:]
    run = load_manifest(Store.open(store), "c")["runs"][0]
    assert run["position"][0] == 0 and run["position"][1] > 0 and run["position_byte"][:2] == run["position"]
    s = ingest([path], store, "c", shard_rows=SHARD_ROWS, max_doc_bytes=4000, workers=2, piece_bytes=64 << 10,
               progress=False)
    assert s.resumed and _summary(s) == ref_summary
    assert _state(store) == _state(ref)
    _no_strays(store)


def _one_big_parquet(tmp_path: Path, real_docs: list[dict]) -> Path:
    """One Parquet file of 18 row groups: ids repeated far apart, an empty and an over-long text in every
    group (so every row range writes quarantine), an id-less twin."""
    rows = []
    for i in range(900):
        d = real_docs[i % len(real_docs)]
        text = "  " if i % 50 == 7 else "y" * 6000 if i % 50 == 21 else d["text"]
        rows.append({"id": None if i == 333 else f"d{i % 500}", "text": text, "domain": d["domain"]})
    path = tmp_path / "big.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=50)
    return path


def test_row_group_ranges_of_one_parquet_file_give_the_single_process_store(tmp_path, real_docs, ray_local):
    from curate.ingestion.readers import parquet_row_cuts

    path = _one_big_parquet(tmp_path, real_docs)
    piece = path.stat().st_size // 6
    cuts = parquet_row_cuts(str(path), 0, piece)
    assert cuts[0] == 0 and cuts[-1] == 900 and len(cuts) >= 5 and all(c % 50 == 0 for c in cuts)
    assert parquet_row_cuts(str(path), 620, piece)[0] == 620  # a resumed run starts at its row
    ref = tmp_path / "reference"
    ref_summary = _summary(ingest([path], ref, "c", shard_rows=SHARD_ROWS, max_doc_bytes=4000, progress=False))
    store = tmp_path / "store"
    s = ingest([path], store, "c", shard_rows=SHARD_ROWS, max_doc_bytes=4000, workers=2, piece_bytes=piece,
               progress=False)
    manifest = json.loads((store / "shards" / "c" / "_manifest.json").read_text())
    assert len(manifest["quarantine"]) == len(cuts) - 1  # one quarantine file per row range
    assert _summary(s) == ref_summary
    assert _state(store) == _state(ref)  # row numbers in quarantine are the file's own
    _no_strays(store)
    # killed after some ranges committed: the position is a row of the file, and the rerun reads on from it
    crashed_store = tmp_path / "crashed"
    code = (f"from curate import ingest; ingest([{str(path)!r}], {str(crashed_store)!r}, 'c', "
            f"shard_rows={SHARD_ROWS}, max_doc_bytes=4000, workers=2, ray_address='local', piece_bytes={piece}, "
            "progress=False)")
    crashed = _child_code(code, "ingest.after_commit:2")
    assert crashed.returncode == -9, crashed.stderr[-2000:]
    run = load_manifest(Store.open(crashed_store), "c")["runs"][0]
    assert run["position"][0] == 0 and run["position"][1] in cuts[1:-1] and "position_byte" not in run
    s = ingest([path], crashed_store, "c", shard_rows=SHARD_ROWS, max_doc_bytes=4000, workers=2, piece_bytes=piece,
               progress=False)
    assert s.resumed and _summary(s) == ref_summary
    assert _state(crashed_store) == _state(ref)
    _no_strays(crashed_store)


def test_cli_workers(tmp_path, real_docs, write_jsonl, ray_local):
    from typer.testing import CliRunner

    from curate.cli import app

    paths = _many_batches(tmp_path, real_docs, write_jsonl)[:2]
    store = tmp_path / "store"
    res = CliRunner().invoke(app, ["ingest", *map(str, paths), "--store", str(store), "--corpus", "c",
                                   "--workers", "2", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["read"] == out["kept"] + out["quarantined"] + out["duplicates"]
    assert out["kept"] == len(real_docs) and out["quarantined"] == 3
    bad = CliRunner().invoke(app, ["ingest", str(paths[0]), "--store", str(store), "--workers", "-1"])
    assert bad.exit_code == 2 and "workers must be 0" in bad.output
    bad = CliRunner().invoke(app, ["ingest", str(paths[0]), "--store", str(store), "--workers", "2", "--piece-mb", "0"])
    assert bad.exit_code == 2 and "piece_bytes" in bad.output
