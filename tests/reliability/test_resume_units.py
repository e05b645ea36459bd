"""Resume inside a shard: a run SIGKILLed mid-shard keeps the units it finished (issue 22, item 1).

Real child processes killed by ``CURATE_FAULT`` (and a real Ray worker killed by its own SIGKILL), real
Parquet, real reruns. The scorer logs every doc_id it scores, so the documents scored twice are counted;
the final feature files are compared byte for byte with an uninterrupted run's on a copy of the store.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curate import ingest
from curate.execute import run_scorer
from curate.shards import UNITS_DIR
from tests.reliability.conftest import child, one_row_per_doc
from tests.reliability.unit_scorer import LoggedHeuristics, scored_twice

UNIT = 40  # documents per unit: two input row groups of 20


@pytest.fixture
def stores(tmp_path: Path, real_docs, write_jsonl) -> tuple[Path, Path]:
    """(store to interrupt, copy of it scored without interruption): 300 real documents in shards of 200 and
    100, row groups of 20; the reference's feature files are already written."""
    path = write_jsonl(tmp_path / "docs.jsonl", [{"id": d["id"], "text": d["text"]} for d in real_docs[:300]])
    store = tmp_path / "store"
    ingest([path], store, "c", shard_rows=200, row_group_rows=20, progress=False)
    ref = tmp_path / "ref"
    shutil.copytree(store, ref)
    report = run_scorer(ref, LoggedHeuristics(str(tmp_path / "ref.log")), workers=0, unit_rows=UNIT, progress=False)
    assert (report.done, report.rows) == (2, 300)
    assert scored_twice(tmp_path / "ref.log") == 0
    return store, ref


@pytest.fixture
def ticks(monkeypatch) -> list[int]:
    """What run_scorer's progress bar is advanced by, tick by tick."""
    seen: list[int] = []

    @contextlib.contextmanager
    def bar(description, total=None, unit="docs", enabled=None):
        yield lambda n=1, *, total=None: seen.append(n)

    monkeypatch.setattr("curate.execute.progress_bar", bar)
    return seen


def _features(store: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((store / "features" / "heuristics").glob("*.parquet"))}


def _score_child(store: Path, log: Path, children: list, fault: str = "") -> int:
    run = child("score_units", str(store), str(log), str(UNIT), env={"CURATE_FAULT": fault} if fault else None)
    children.append(run)
    run.communicate(timeout=120)
    return run.returncode


def _check_same_as_uninterrupted(store: Path, ref: Path) -> None:
    assert _features(store) == _features(ref)  # byte-identical feature files
    assert one_row_per_doc(store, "heuristics") == 300
    assert not [p for p in (store / UNITS_DIR).rglob("*") if p.is_file()]  # the units were removed
    meta = pq.read_metadata(store / "features" / "heuristics" / "c--part-00000.parquet")
    assert meta.num_row_groups == 5 and b"curate.unit" not in meta.metadata  # the units' row groups, the shard's metadata


@pytest.mark.parametrize(("fault", "twice"), [
    ("score.batch:3", UNIT),  # mid-unit: the third unit of the first shard was scored but not yet kept
    ("score.unit:5", 0),  # every unit of the first shard kept, its feature file not yet assembled
    ("score.assembled:1", 0),  # the feature file written, its units not yet removed
    ("score.unit:7", 0),  # mid-way through the second shard, the first one done
])
def test_sigkill_mid_shard_loses_at_most_one_unit(stores, tmp_path, children, fault, twice):
    store, ref = stores
    log = tmp_path / "run.log"
    assert _score_child(store, log, children, fault) == -9  # SIGKILLed where the fault said
    assert _score_child(store, log, children) == 0  # the rerun finishes
    assert scored_twice(log) == twice <= UNIT
    assert len(log.read_text().split()) == 300 + twice
    _check_same_as_uninterrupted(store, ref)


def test_damaged_units_are_scored_again_not_trusted(stores, tmp_path, children):
    store, ref = stores
    log = tmp_path / "run.log"
    assert _score_child(store, log, children, "score.unit:3") == -9  # three units of the first shard kept
    units = sorted((store / UNITS_DIR / "heuristics" / "c--part-00000").glob("*.parquet"))
    assert [u.name for u in units] == ["0000000000-0000000040.parquet", "0000000040-0000000080.parquet",
                                       "0000000080-0000000120.parquet"]
    units[0].write_bytes(units[0].read_bytes()[: units[0].stat().st_size // 2])  # truncated: unreadable
    shutil.copyfile(units[2], units[1])  # a whole unit file, but of other rows (its range does not match)
    assert _score_child(store, log, children) == 0
    assert scored_twice(log) == 2 * UNIT  # exactly the two damaged units, scored again
    _check_same_as_uninterrupted(store, ref)


@pytest.mark.slow
def test_ray_worker_sigkilled_mid_shard_resumes_from_its_units(stores, tmp_path, ray_local, ticks):
    store, ref = stores
    log = tmp_path / "run.log"
    report = run_scorer(store, LoggedHeuristics(str(log), kill_at=4), workers=1, unit_rows=UNIT, progress=False)
    assert log.with_suffix(".killed").exists()  # a Ray worker was SIGKILLed after its fourth batch
    assert report.ok and (report.done, report.rows) == (2, 300)
    assert scored_twice(log) == UNIT  # the unit it was in; the three before it were kept
    # the retry reports the three kept units again: the bar still counts every document once
    assert sum(ticks) == 300 and all(t > 0 for t in ticks)
    _check_same_as_uninterrupted(store, ref)


def test_progress_advances_per_unit_and_counts_a_resumed_unit_once(stores, tmp_path, children, ticks):
    store, _ = stores
    log = tmp_path / "run.log"
    assert _score_child(store, log, children, "score.unit:3") == -9  # three units of the first shard kept
    report = run_scorer(store, LoggedHeuristics(str(log)), workers=0, unit_rows=UNIT, progress=False)
    assert (report.done, report.rows) == (2, 300)
    # a tick per unit, the three kept ones included, each counted once: 200 = 40 * 5, 100 = 40 + 40 + 20
    assert ticks == [40, 40, 40, 40, 40, 40, 40, 20]
