"""The scoring engine on real components: Ray actors, Prefect flows, DuckDB over the feature Parquet."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curate import connect
from curate.cli import app
from curate.execute import run_scorer
from curate.store import Store
from scorers.registry import builtin, get_scorer

REPO = Path(__file__).resolve().parents[2]


def _one_row_per_doc(store: Path, table: str) -> None:
    con = connect(store)
    docs = con.execute("SELECT count(*) FROM docs").fetchone()[0]
    rows, distinct = con.execute(f"SELECT count(*), count(DISTINCT doc_id) FROM {table}").fetchone()
    assert rows == distinct == docs
    assert con.execute(f"SELECT count(*) FROM docs ANTI JOIN {table} USING (doc_id)").fetchone()[0] == 0


def _table(store: Path, name: str) -> list[tuple]:
    return connect(store).execute(f"SELECT * FROM {name} ORDER BY doc_id").fetchall()


def test_ray_and_inline_give_identical_features(sharded_store, tmp_path, ray_local):
    inline = run_scorer(sharded_store, get_scorer("heuristics"), workers=0)
    assert inline.done == 6 and inline.ok
    rows_inline = _table(sharded_store, "heuristics")
    for p in (sharded_store / "features").iterdir():
        for f in p.iterdir():
            f.unlink()
    on_ray = run_scorer(sharded_store, get_scorer("heuristics"), workers=2)
    assert on_ray.done == 6 and on_ray.workers == 2
    assert _table(sharded_store, "heuristics") == rows_inline
    _one_row_per_doc(sharded_store, "heuristics")


def test_rerun_skips_and_a_changed_config_recomputes_only_its_scorer(sharded_store, ray_local):
    first = [run_scorer(sharded_store, get_scorer(n), workers=2) for n in ("heuristics", "langid")]
    assert [r.done for r in first] == [6, 6]
    again = [run_scorer(sharded_store, get_scorer(n), workers=2) for n in ("heuristics", "langid")]
    assert [(r.done, r.skipped) for r in again] == [(0, 6), (0, 6)]
    changed = run_scorer(sharded_store, get_scorer("langid", max_chars=500), workers=2)
    assert (changed.done, changed.skipped) == (6, 0)
    assert run_scorer(sharded_store, get_scorer("heuristics"), workers=2).skipped == 6
    _one_row_per_doc(sharded_store, "langid")
    manifest = json.loads((sharded_store / "features" / "langid" / "_manifest.json").read_text())
    assert manifest["config"]["max_chars"] == 500
    assert all(s["status"] == "done" for s in manifest["shards"].values())


@pytest.fixture
def poisoned_store(tmp_path, real_docs, write_jsonl, monkeypatch):
    docs = [{"id": d["id"], "text": d["text"]} for d in real_docs[:150]]
    docs[70]["text"] += " POISON-PILL"  # lands in the second of three shards
    store = tmp_path / "store"
    from curate import ingest

    ingest([write_jsonl(tmp_path / "d.jsonl", docs)], store, "c", shard_rows=50)
    monkeypatch.setitem(builtin(), "failing", "tests.engine.failing_scorer:FailingScorer")
    return store


def test_failing_shard_is_retried_then_recorded_while_others_finish(poisoned_store, ray_local):
    from prefect import get_client  # noqa: F401  (the flow below runs on the real Prefect engine)

    from flows.score import ShardFailures, score_flow

    state = score_flow(str(poisoned_store), ["failing"], workers=2, retries=2, return_state=True)
    assert state.is_failed()
    with pytest.raises(ShardFailures, match="poisoned document"):
        state.result()
    manifest = json.loads((poisoned_store / "features" / "failing" / "_manifest.json").read_text())
    status = {k: (v["status"], v["attempts"]) for k, v in manifest["shards"].items()}
    assert status == {
        "c--part-00000.parquet": ("done", 1),
        "c--part-00001.parquet": ("failed", 3),
        "c--part-00002.parquet": ("done", 1),
    }
    assert "poisoned document" in manifest["shards"]["c--part-00001.parquet"]["error"]
    assert connect(poisoned_store).execute("SELECT count(*) FROM failing").fetchone()[0] == 100


def test_cli_exit_code_and_artifact_name_the_failed_shard(poisoned_store, ray_local):
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    result = CliRunner().invoke(app, ["score", "--scorers", "failing", "--store", str(poisoned_store), "--retries", "0"])
    assert result.exit_code == 1
    assert "part-00001" in result.output and "poisoned document" in result.output

    async def latest_artifact() -> str:
        async with get_client() as client:
            arts = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["curate-score"])),
                                               sort=ArtifactSort.CREATED_DESC, limit=1)
            return arts[0].data

    md = asyncio.run(latest_artifact())
    assert "part-00001" in md and "failed" in md


def test_unknown_scorer_and_missing_model_refused_before_work(sharded_store):
    result = CliRunner().invoke(app, ["score", "--scorers", "heuristics,nope", "--store", str(sharded_store)])
    assert result.exit_code == 2 and "unknown scorer 'nope'" in result.output
    result = CliRunner().invoke(app, ["score", "--scorers", "domain", "--store", str(sharded_store)])
    assert result.exit_code == 2 and "curate train-domain" in result.output
    assert not (sharded_store / "features").exists()


def test_sigkill_flow_mid_run_then_rerun_computes_only_missing_shards(sharded_store, ray_local):
    code = (
        "from flows.score import score_flow; "
        f"score_flow({str(sharded_store)!r}, ['heuristics'], workers=0)"
    )
    env = dict(os.environ, CURATE_FAULT="score.after_result:2", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    log = sharded_store.parent / "flow.log"
    with open(log, "wb") as out:
        # own session: the SIGKILLed flow orphans its temporary Prefect server, which we then reap
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stdout=out, stderr=out,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=300)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    assert rc == -9, log.read_text()[-2000:]
    written = list((sharded_store / "features" / "heuristics").glob("*.parquet"))
    assert len(written) == 2
    report = run_scorer(sharded_store, get_scorer("heuristics"), workers=2)
    assert (report.skipped, report.done) == (2, 4)
    _one_row_per_doc(sharded_store, "heuristics")
    assert not list((sharded_store / "features" / "heuristics").glob("*.tmp"))


def test_feature_files_carry_their_fingerprint(sharded_store):
    import pyarrow.parquet as pq

    scorer = get_scorer("heuristics")
    run_scorer(sharded_store, scorer, workers=0)
    f = sorted((sharded_store / "features" / "heuristics").glob("*.parquet"))[0]
    meta = pq.read_metadata(f).metadata
    assert meta[b"curate.scorer"] == f"heuristics=={scorer.version}".encode()
    assert len(meta[b"curate.fingerprint"]) == 20
    assert Store.open(sharded_store).feature_tables() == ["heuristics"]
