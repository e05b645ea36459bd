"""Planning from one listing (issue 22, item 4): the manifest records each checked feature file's size and
mtime, and a listed file that still has them is done without its footer being read; any other file is
checked by its footer. Real runs, real files."""

from __future__ import annotations

import json
import os

import pyarrow.parquet as pq
import pytest

from curate.execute import run_scorer
from curate.scoring import scorer_fingerprint
from curate.shards import plan
from curate.store import Store
from scorers.registry import get_scorer


def _plan(store) -> tuple[list[str], list[str]]:
    todo, done = plan(Store.open(store), "heuristics", scorer_fingerprint(get_scorer("heuristics")))
    return [i.output.rsplit("/", 1)[1] for i in todo], [i.output.rsplit("/", 1)[1] for i in done]


def test_plan_opens_only_files_the_manifest_cannot_vouch_for(sharded_store):
    assert run_scorer(sharded_store, get_scorer("heuristics"), workers=0).done == 6
    feat = sharded_store / "features" / "heuristics"
    manifest = json.loads((feat / "_manifest.json").read_text())["shards"]
    for name, entry in manifest.items():  # what the run recorded is what a listing shows
        st = (feat / name).stat()
        assert (entry["size"], entry["mtime_ns"]) == (st.st_size, st.st_mtime_ns)

    # same size and mtime: vouched for, not opened (garbage in place of the footer goes unseen)
    bad = feat / "c--part-00002.parquet"
    st = bad.stat()
    bad.write_bytes(b"x" * st.st_size)
    os.utime(bad, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _plan(sharded_store) == ([], sorted(manifest))

    # a changed mtime: the footer is read, and the damaged file is scored again, alone
    os.utime(bad, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert _plan(sharded_store)[0] == [bad.name]
    report = run_scorer(sharded_store, get_scorer("heuristics"), workers=0)
    assert (report.done, report.skipped) == (1, 5)
    assert _plan(sharded_store) == ([], sorted(manifest))


def test_files_checked_by_their_footers_are_recorded_once(sharded_store):
    """A manifest without sizes (written before them, or lost) costs one plan that reads every footer; the
    run records what it checked, and a run with nothing to do then writes nothing."""
    assert run_scorer(sharded_store, get_scorer("heuristics"), workers=0).done == 6
    path = sharded_store / "features" / "heuristics" / "_manifest.json"
    path.unlink()
    assert run_scorer(sharded_store, get_scorer("heuristics"), workers=0).skipped == 6
    shards = json.loads(path.read_text())["shards"]
    assert len(shards) == 6 and all(e["status"] == "done" and e["size"] for e in shards.values())
    written = path.stat().st_mtime_ns
    assert run_scorer(sharded_store, get_scorer("heuristics"), workers=0).skipped == 6
    assert path.stat().st_mtime_ns == written


def test_unit_rows_from_the_environment(sharded_store, monkeypatch):
    from curate.errors import ConfigError

    monkeypatch.setenv("CURATE_UNIT_ROWS", "ten")
    with pytest.raises(ConfigError, match=r"CURATE_UNIT_ROWS='ten': give a whole number of documents of at least 1"):
        run_scorer(sharded_store, get_scorer("heuristics"), workers=0)
    monkeypatch.setenv("CURATE_UNIT_ROWS", "20")  # 50-row shards in units of 20, 20 and 10 rows
    assert run_scorer(sharded_store, get_scorer("heuristics"), workers=0).done == 6
    for f in (sharded_store / "features" / "heuristics").glob("*.parquet"):
        md = pq.read_metadata(f)
        assert [md.row_group(g).num_rows for g in range(md.num_row_groups)] == [20, 20, 10]
