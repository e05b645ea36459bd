"""Faults mid-run: the feature directory turns read-only, or the disk fills up, while a real run writes.

The run must stop with one clear error, leave no partial file where a reader looks, and a rerun
after the fix must finish with exactly one row per document and a truthful manifest. (SIGKILL
mid-shard and mid-flow is covered by tests/engine/test_score.py and tests/ingestion/test_resume.py.)
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curate import connect
from curate.execute import run_scorer
from curate.features import plan
from curate.store import Store
from scorers.base import scorer_fingerprint
from scorers.registry import get_scorer
from tests.reliability.conftest import child, one_row_per_doc

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
    assert f"cannot write {feat}/c--part-00003.parquet: File too large ({feat})" in said
    assert "(or free space) and re-run" in said and "(3 shard(s) finished in this run" in said
    assert not list(Path(feat).glob("*.tmp"))  # the half-written temporary was removed
    _check_nothing_partial(shared_store, finished=3)
    _rerun_completes(shared_store, finished=3)
