"""Faults mid-run: the feature directory turns read-only or the disk fills up while a real run writes;
an ingest meets a store that refuses writes; a Ray worker is SIGKILLed mid-shard in the score flow.

The run must stop with one clear error (or, for a dead worker, retry the shard on a new one), leave
no partial file where a reader looks, and a rerun after the fix must finish with exactly one row per
document and a truthful manifest. (SIGKILL of the flow process and of an ingest is covered by
tests/engine/test_score.py and tests/ingestion/test_resume.py; a Prefect server restart mid-flow by
tests/reliability/test_prefect_restart.py.)
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curate import connect, ingest
from curate.execute import run_scorer
from curate.shards import plan
from curate.scoring import scorer_fingerprint
from curate.store import Store
from scorers.registry import builtin, get_scorer
from tests.reliability.conftest import child, one_row_per_doc, tree_hashes
from tests.reliability.slow_scorer import GatedHeuristics

# Linux capability numbers (linux/capability.h) and prctl option (linux/prctl.h)
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, PR_CAPBSET_DROP = 1, 2, 24


def _obey_file_permissions() -> None:
    """Child pre-exec hook: root keeps its uid but loses the powers that ignore file permissions.

    Dropped from the bounding set before exec, CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH are gone
    from the new program, so a read-only directory refuses it as it would refuse any user.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) refused")


def _as_plain_user() -> dict:
    return {"preexec_fn": _obey_file_permissions} if os.geteuid() == 0 else {}


@pytest.fixture
def shared_store(sharded_store: Path) -> Iterator[Path]:
    """The 6-shard store; checks that a child of ours is refused by a read-only directory, else skips."""
    probe = sharded_store.parent / "read-only"
    probe.mkdir(mode=0o555)
    code = f"open({str(probe / 'x')!r}, 'w')"
    try:
        res = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, **_as_plain_user())
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot start a child that obeys file permissions here: {exc}")
    if res.returncode == 0:
        pytest.skip("this child ignores file permissions (root with CAP_DAC_OVERRIDE kept)")
    yield sharded_store
    for p in [sharded_store, *sharded_store.rglob("*")]:  # a failed test may leave a directory read-only
        if p.is_dir():
            p.chmod(0o755)


def _check_nothing_partial(store: Path, finished: int) -> None:
    """Readers see exactly the finished shards, each whole and carrying its fingerprint."""
    feat = store / "features" / "heuristics"
    assert sorted(p.name for p in feat.glob("*.parquet")) == [f"c--part-{i:05d}.parquet" for i in range(finished)]
    for f in feat.glob("*.parquet"):
        assert pq.read_metadata(f).num_rows == 50
    st = Store.open(store)
    _todo, done = plan(st, "heuristics", scorer_fingerprint(get_scorer("heuristics")))
    assert len(done) == finished  # the files prove themselves complete
    rows, distinct = connect(store).execute("SELECT count(*), count(DISTINCT doc_id) FROM heuristics").fetchone()
    assert rows == distinct == 50 * finished


def _rerun_completes(store: Path, finished: int) -> None:
    report = run_scorer(store, get_scorer("heuristics"), workers=0)
    assert (report.done, report.skipped) == (6 - finished, finished)
    assert one_row_per_doc(store, "heuristics") == 300
    feat = store / "features" / "heuristics"
    assert not list(feat.glob("*.tmp"))  # leftovers of the failed write were cleaned under the lock
    shards = json.loads((feat / "_manifest.json").read_text())["shards"]
    assert len(shards) == 6 and {s["status"] for s in shards.values()} == {"done"}  # the manifest tells the truth
    assert sum(s["rows"] for s in shards.values()) == 300


def _run_with_fault(store: Path, children: list, delay: str, fault: str, after: int) -> tuple[str, str]:
    """Score ``store`` in a child that breaks it after ``after`` shards; (feature dir, what the user saw)."""
    run = child("score", str(store), delay, fault, str(after), **_as_plain_user())
    children.append(run)
    _out, err = run.communicate(timeout=120)
    assert run.returncode == 2, err
    assert "Traceback" not in err
    return Store.open(store).path("features", "heuristics"), " ".join(err.split())


def test_feature_directory_made_read_only_mid_run(shared_store, children):
    feat, said = _run_with_fault(shared_store, children, "1.5", "chmod", 2)
    assert (f"error: scoring 'heuristics' stopped: cannot write {feat}/c--part-00002.parquet: Permission denied "
            f"({feat}). Make that directory writable (or free space) and re-run: finished work is kept and "
            "skipped, and no partial file is visible (2 shard(s) finished in this run and 0 earlier are kept)") in said
    _check_nothing_partial(shared_store, finished=2)
    Path(feat).chmod(0o755)  # the user fixes the permissions
    _rerun_completes(shared_store, finished=2)


def test_disk_full_mid_run(shared_store, children):
    feat, said = _run_with_fault(shared_store, children, "0.1", "full", 3)
    units = Store.open(shared_store).path("units", "heuristics", "c--part-00003")  # the shard's first unit failed
    assert f"cannot write {units}/0000000000-0000000050.parquet: File too large ({units})" in said
    assert "(or free space) and re-run" in said and "(3 shard(s) finished in this run" in said
    assert not list(Path(feat).glob("*.tmp")) and not list(Path(units).glob("*.tmp"))  # the temporary was removed
    _check_nothing_partial(shared_store, finished=3)
    _rerun_completes(shared_store, finished=3)



# ----------------------------------------------------------------------------- ingest into a store that refuses writes


def _file_size_limit() -> None:
    """Child pre-exec hook: no file may grow past 1 KiB (RLIMIT_FSIZE), as on a full disk; writes fail with EFBIG."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # kept across exec: the write fails instead of killing the child
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, resource.RLIM_INFINITY))


def _curate(*args: str, **popen) -> tuple[int, str]:
    """Run the real ``curate`` command line; (exit code, what it printed, whitespace folded)."""
    done = subprocess.run([str(Path(sys.executable).parent / "curate"), *args], check=False, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "COLUMNS": "1000"}, **popen)  # no folded paths
    return done.returncode, " ".join((done.stdout + done.stderr).split())


@pytest.mark.parametrize("fault", ["read-only", "full"])
def test_ingest_into_a_store_that_refuses_writes(fault, shared_store, tmp_path, real_docs, write_jsonl):
    more = write_jsonl(tmp_path / "more.jsonl", [{"id": d["id"], "text": d["text"]} for d in real_docs[300:]])
    if fault == "read-only":
        for p in [shared_store, *shared_store.rglob("*")]:
            if p.is_dir() and p.name != "locks":  # the lock can be taken; no data can be written
                p.chmod(0o555)
        popen, reason = _as_plain_user(), "Permission denied"
    else:
        popen, reason = {"preexec_fn": _file_size_limit}, "File too large"
    before = {k: v for k, v in tree_hashes(shared_store).items() if not k.startswith("locks/")}
    rc, said = _curate("ingest", str(more), "--store", str(shared_store), "--corpus", "c", **popen)
    shards = shared_store / "shards" / "c"
    assert rc == 2 and "Traceback" not in said, said
    assert (f"error: cannot write {shards}/part-00006.parquet: {reason} ({shards}). Make that directory writable "
            "(or free space) and re-run: finished work is kept and skipped, and no partial file is visible") in said
    for p in [shared_store, *shared_store.rglob("*")]:
        if p.is_dir():
            p.chmod(0o755)  # the user fixes the store
    assert {k: v for k, v in tree_hashes(shared_store).items() if not k.startswith("locks/")} == before  # untouched
    s = ingest([more], shared_store, "c", progress=False)
    assert (s.read, s.kept, s.quarantined, s.duplicates) == (20, 20, 0, 0)
    docs, distinct = connect(shared_store).execute("SELECT count(*), count(DISTINCT doc_id) FROM docs").fetchone()
    assert docs == distinct == 320
    assert not list(shards.glob("*.tmp"))


def test_creating_a_store_where_one_may_not_write(shared_store, tmp_path, real_docs, write_jsonl):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": real_docs[0]["text"]}])
    target = shared_store.parent / "read-only" / "new-store"  # the fixture's probe: a directory we may not write
    rc, said = _curate("ingest", str(path), "--store", str(target), **_as_plain_user())
    assert rc == 2 and "Traceback" not in said, said
    assert (f"error: cannot create the store {target}: Permission denied. Choose a store path where you may write "
            "(or make its parent directory writable) and re-run; nothing was written") in said
    assert not target.exists()


# ----------------------------------------------------------------------------- a Ray worker SIGKILLed mid-shard


def _kill_first_worker_at_the_gate(gate: Path, killed: list[int]) -> None:
    """Wait for a Ray worker to stop at the gate mid-shard, SIGKILL it, then open the gate for the rest."""
    try:
        deadline = time.monotonic() + 240
        while not (started := sorted(gate.glob("started-*"))):
            if time.monotonic() > deadline:
                return  # the test fails on the missing kill
            time.sleep(0.05)
        pid = int(started[0].name.split("-")[1])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        if pid != os.getpid() and "ScorerActor" in cmdline:  # a Ray worker holding the scorer, never this process
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    finally:
        (gate / GatedHeuristics.OPEN).touch()


def _score_flow_killing_a_worker(store: Path, retries: int) -> tuple[object, list[int]]:
    """Run the real score flow on 2 Ray workers with the gated heuristics; one worker is SIGKILLed mid-shard."""
    from flows.score import score_flow

    gate = store.parent / "gate"
    gate.mkdir()
    killed: list[int] = []
    killer = threading.Thread(target=_kill_first_worker_at_the_gate, args=(gate, killed), daemon=True)
    killer.start()
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(builtin(), "heuristics", "tests.reliability.slow_scorer:GatedHeuristics")
        state = score_flow(str(store), ["heuristics"], {"heuristics": {"gate": str(gate)}}, workers=2,
                           retries=retries, progress=False, return_state=True)
    killer.join(timeout=60)
    assert len(killed) == 1, "no Ray worker was killed mid-shard"
    return state, killed


@pytest.mark.slow
def test_ray_worker_sigkilled_mid_shard_is_replaced_and_its_shard_retried(sharded_store, ray_local):
    state, [pid] = _score_flow_killing_a_worker(sharded_store, retries=1)
    assert state.is_completed(), state.message
    feat = sharded_store / "features" / "heuristics"
    shards = json.loads((feat / "_manifest.json").read_text())["shards"]
    assert {s["status"] for s in shards.values()} == {"done"} and len(shards) == 6
    assert sorted(s["attempts"] for s in shards.values()) == [1, 1, 1, 1, 1, 2]  # the killed shard, once more
    assert not list(feat.glob("*.tmp"))  # the dead worker's half-written temporary was removed
    _check_nothing_partial(sharded_store, finished=6)
    assert one_row_per_doc(sharded_store, "heuristics") == 300


@pytest.mark.slow
def test_ray_worker_sigkilled_without_retries_fails_its_shard_clearly(sharded_store, ray_local):
    from flows.score import ShardFailures

    state, _ = _score_flow_killing_a_worker(sharded_store, retries=0)
    assert state.is_failed()
    with pytest.raises(ShardFailures) as exc:
        state.result()
    feat = sharded_store / "features" / "heuristics"
    shards = json.loads((feat / "_manifest.json").read_text())["shards"]
    [(name, bad)] = [(k, s) for k, s in shards.items() if s["status"] != "done"]
    said = ("the Ray worker process scoring this shard died before finishing it (Ray exit type SYSTEM_ERROR: "
            "killed, out of memory or crashed); the units it finished are kept. Re-run to retry it")
    assert f"1 shard(s) failed; the rest were saved. Re-run to retry them.\nheuristics:{bad['input']}: " in str(exc.value)
    assert said in str(exc.value)
    assert (bad["status"], bad["attempts"], bad["rows"]) == ("failed", 1, 0) and said in bad["error"]  # the manifest
    assert not list(feat.glob("*.tmp")) and not (feat / name).exists()
    assert len(list(feat.glob("*.parquet"))) == 5  # the other shards were scored and kept
    report = run_scorer(sharded_store, get_scorer("heuristics"), workers=2)  # the rerun does only what is missing
    assert (report.done, report.skipped) == (1, 5)
    assert one_row_per_doc(sharded_store, "heuristics") == 300
    shards = json.loads((feat / "_manifest.json").read_text())["shards"]
    assert {s["status"] for s in shards.values()} == {"done"} and len(shards) == 6
