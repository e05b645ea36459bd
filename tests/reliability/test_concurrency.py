"""Two writers of one feature table (or one corpus) at once, and DuckDB readers during a run.

Real child processes score a real store; the checks read it back with DuckDB.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import duckdb
import pytest

from curate import ingest
from curate.execute import run_scorer
from curate.locks import LockedError, lock_path, read_holder
from curate.store import Store
from scorers.registry import get_scorer
from tests.reliability.conftest import child, one_row_per_doc


def _finish(p, timeout: float = 120) -> tuple[dict, str]:
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1]), err


def _wait_for_line(p, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if text in line:
            return
        if p.poll() is not None:
            raise AssertionError(p.stderr.read()[-3000:])
    raise AssertionError(f"child never printed {text!r}")


def test_two_score_runs_at_once_write_each_shard_once(sharded_store, children):
    a = child("score", str(sharded_store), "0.25")
    b = child("score", str(sharded_store), "0.25")
    children += [a, b]
    (ra, ea), (rb, eb) = _finish(a), _finish(b)
    # one run scored all six shards; the other waited for it, then found every shard done
    assert sorted([(ra["done"], ra["skipped"]), (rb["done"], rb["skipped"])]) == [(0, 6), (6, 0)]
    first, waiter_err = (ra, eb) if ra["done"] else (rb, ea)
    assert f"waiting for pid {first['pid']} on host {socket.gethostname()}" in waiter_err
    assert "CURATE_LOCK_TIMEOUT=0" in waiter_err  # how to fail instead of waiting
    assert one_row_per_doc(sharded_store, "heuristics") == 300
    feat = sharded_store / "features" / "heuristics"
    assert sorted(p.name for p in feat.glob("*.parquet")) == [f"c--part-{i:05d}.parquet" for i in range(6)]
    assert not list(feat.glob("*.tmp"))
    manifest = json.loads((feat / "_manifest.json").read_text())
    assert len(manifest["shards"]) == 6 and all(s["status"] == "done" for s in manifest["shards"].values())
    assert read_holder(lock_path(Store.open(sharded_store), "score-heuristics")) is None  # released


def test_busy_lock_names_its_holder_and_a_killed_holder_frees_it(sharded_store, children):
    st = Store.open(sharded_store)
    holder = child("hold", str(sharded_store), "score-heuristics", "300")
    children.append(holder)
    _wait_for_line(holder, "held")
    with pytest.raises(LockedError) as exc:
        run_scorer(st, get_scorer("heuristics"), workers=0, lock_timeout=0)
    msg = str(exc.value)
    assert f"cannot score 'heuristics' on {st.uri} now" in msg
    assert f"pid {holder.pid} on host {socket.gethostname()}, started 20" in msg
    assert "Wait for that run to finish and re-run" in msg and "CURATE_LOCK_TIMEOUT" in msg
    assert str(lock_path(st, "score-heuristics")) in msg
    t0 = time.monotonic()
    with pytest.raises(LockedError, match=r"after waiting 0.5s"):
        run_scorer(st, get_scorer("heuristics"), workers=0, lock_timeout=0.5)
    assert time.monotonic() - t0 >= 0.5
    assert not (sharded_store / "features" / "heuristics").exists()  # nothing was scored while locked

    os.kill(holder.pid, signal.SIGKILL)  # a dead holder: its lock file still names it, but the lock is free
    holder.wait(timeout=30)
    assert read_holder(lock_path(st, "score-heuristics")).pid == holder.pid
    report = run_scorer(st, get_scorer("heuristics"), workers=0, lock_timeout=0)
    assert report.done == 6
    one_row_per_doc(sharded_store, "heuristics")


def test_lock_timeout_from_the_environment(sharded_store, children, monkeypatch):
    holder = child("hold", str(sharded_store), "score-heuristics", "300")
    children.append(holder)
    _wait_for_line(holder, "held")
    monkeypatch.setenv("CURATE_LOCK_TIMEOUT", "0")
    with pytest.raises(LockedError, match=f"pid {holder.pid}"):
        run_scorer(sharded_store, get_scorer("heuristics"), workers=0)
    monkeypatch.setenv("CURATE_LOCK_TIMEOUT", "soon")
    with pytest.raises(Exception, match="CURATE_LOCK_TIMEOUT='soon' is not a number of seconds"):
        run_scorer(sharded_store, get_scorer("heuristics"), workers=0)


def test_ingest_into_a_corpus_being_ingested_waits_or_names_the_holder(sharded_store, children, tmp_path, real_docs,
                                                                       write_jsonl, monkeypatch):
    holder = child("hold", str(sharded_store), "ingest-c", "300")
    children.append(holder)
    _wait_for_line(holder, "held")
    path = write_jsonl(tmp_path / "more.jsonl", [{"text": d["text"] + " (v2)"} for d in real_docs[300:310]])
    monkeypatch.setenv("CURATE_LOCK_TIMEOUT", "0")
    with pytest.raises(LockedError, match=rf"ingest into corpus 'c' .* pid {holder.pid}"):
        ingest([path], sharded_store, "c", progress=False)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    assert ingest([path], sharded_store, "c", progress=False).kept == 10


def _complete_shards(feat: Path) -> tuple[int, int]:
    """(rows, distinct doc_ids) over the committed feature files, each checked to be a whole shard."""
    names = [p.name for p in feat.iterdir()] if feat.exists() else []
    assert all(n.endswith((".parquet", ".json", ".tmp")) for n in names), names
    if not any(n.endswith(".parquet") for n in names):
        return 0, 0
    con = duckdb.connect()
    try:
        per_file = con.execute(
            "SELECT filename, count(*), count(DISTINCT doc_id) FROM read_parquet(?, filename = true) GROUP BY 1",
            [str(feat / "*.parquet")],
        ).fetchall()
    except duckdb.IOException as exc:  # a file listed by the glob was renamed over between list and open
        if "No files found" in str(exc):
            return 0, 0
        raise
    finally:
        con.close()
    for name, rows, distinct in per_file:
        assert name.endswith(".parquet") and rows == distinct == 50, (name, rows, distinct)
    return sum(r for _, r, _ in per_file), sum(d for _, _, d in per_file)


def test_duckdb_readers_during_a_run_see_only_complete_shards(sharded_store, children):
    feat = sharded_store / "features" / "heuristics"
    run = child("score", str(sharded_store), "0.3")
    children.append(run)
    seen = set()
    while run.poll() is None:
        rows, _ = _complete_shards(feat)
        seen.add(rows)
        time.sleep(0.02)
    _finish(run)
    assert _complete_shards(feat) == (300, 300)
    assert seen <= {0, 50, 100, 150, 200, 250, 300}
    assert len(seen & {50, 100, 150, 200, 250}) >= 2, seen  # the reader really ran while shards were landing
