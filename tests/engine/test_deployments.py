"""The curate deployments on a real Prefect server: `curate flows serve` registers them (the pipeline with its
cron schedule), a run triggered through the API is picked up by the serving process and scores the store.
Runs the scheduler creates on its own are tested in test_schedules.py.

The server and the serving process run in their own sessions (each with a fresh ``PREFECT_HOME``, so
the server has a fresh SQLite database) and are killed as process groups afterwards; the test process
talks to the server through a Prefect client pointed at it with ``temporary_settings``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from curate import connect
from tests.engine._procs import (
    BIN,
    free_port,
    kill_group,
    prefect_env,
    start_group,
    start_prefect_server,
    tail,
)

CRON = "0 0 1 1 *"  # valid, and does not fire during the test

pytestmark = pytest.mark.slow


@dataclass
class Server:
    api_url: str
    log: Path


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    log = tmp_path / "server.log"
    proc = start_prefect_server(tmp_path / "server-home", port, log)
    try:
        yield Server(f"http://127.0.0.1:{port}/api", log)
    finally:
        kill_group(proc)


def test_served_score_deployment_runs_when_triggered(sharded_store, prefect_server, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL, temporary_settings

    serve_log = tmp_path / "serve.log"
    served = start_group([str(BIN / "curate"), "flows", "serve", "--store", str(sharded_store), "--scorers",
                          "heuristics", "--cron", CRON], prefect_env(tmp_path / "serve-home", prefect_server.api_url),
                         serve_log)

    def logs() -> str:
        return f"\n--- serve log ---\n{tail(serve_log)}\n--- server log ---\n{tail(prefect_server.log, 2000)}"

    async def scenario():
        async with get_client() as client:
            deadline = time.monotonic() + 180
            while True:  # `curate flows serve` registers the deployments one by one, then polls for runs
                try:
                    deployment = await client.read_deployment_by_name("score/curate-score")
                    other = await client.read_deployment_by_name("train-domain/curate-train-domain")
                    scheduled = await client.read_deployment_by_name("pipeline/curate-pipeline")
                    break
                except ObjectNotFound:
                    pass
                if served.poll() is not None:
                    pytest.fail(f"curate flows serve exited with {served.returncode}{logs()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"deployments score/curate-score, train-domain/curate-train-domain not both "
                                f"registered after 180s{logs()}")
                await asyncio.sleep(0.5)
            # workers=0: score inline in the flow-run process (no Ray there); the rest comes from the deployment
            run = await client.create_flow_run_from_deployment(deployment.id, parameters={"workers": 0, "progress": False})
            deadline = time.monotonic() + 240
            while not (run := await client.read_flow_run(run.id)).state.is_final():
                if served.poll() is not None:
                    pytest.fail(f"curate flows serve exited with {served.returncode} during the run{logs()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"flow run {run.id} still {run.state.type.value} after 240s{logs()}")
                await asyncio.sleep(0.5)
            artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["curate-score"]), flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
            return deployment, other, scheduled, run, artifacts

    try:
        with temporary_settings({PREFECT_API_URL: prefect_server.api_url}):
            deployment, other, scheduled, run, artifacts = asyncio.run(asyncio.wait_for(scenario(), timeout=480))
    finally:
        kill_group(served)

    # the deployments as served: the pipeline on the cron schedule, one run at a time; the steps unscheduled
    assert [(s.schedule.cron, s.active) for s in scheduled.schedules] == [(CRON, True)]
    assert scheduled.global_concurrency_limit is not None and scheduled.global_concurrency_limit.limit == 1
    assert scheduled.parameters == {"store": str(sharded_store), "corpus": "default", "scorers": ["heuristics"]}
    assert deployment.schedules == [] and other.schedules == []
    assert "curate" in deployment.tags and other.flow_id != deployment.flow_id
    assert deployment.parameters == {"store": str(sharded_store), "scorers": ["heuristics"]}

    # the triggered run: picked up by the serving process, completed with the merged parameters
    assert run.state.is_completed(), f"flow run ended {run.state.type.value}: {run.state.message}{logs()}"
    assert run.deployment_id == deployment.id
    assert run.parameters == {"store": str(sharded_store), "scorers": ["heuristics"], "workers": 0, "progress": False}

    # every shard scored, exactly one feature row per document
    features = sharded_store / "features" / "heuristics"
    manifest = json.loads((features / "_manifest.json").read_text())
    assert len(manifest["shards"]) == 6 and all(s["status"] == "done" for s in manifest["shards"].values())
    con = connect(sharded_store)
    docs = con.execute("SELECT count(*) FROM docs").fetchone()[0]
    rows, distinct = con.execute("SELECT count(*), count(DISTINCT doc_id) FROM heuristics").fetchone()
    assert rows == distinct == docs == 300
    assert con.execute("SELECT count(*) FROM docs ANTI JOIN heuristics USING (doc_id)").fetchone()[0] == 0

    # the run's summary artifact
    assert len(artifacts) == 1, artifacts
    art = artifacts[0]
    assert art.type == "markdown" and art.flow_run_id == run.id
    assert art.data.startswith("## curate score") and "| heuristics | 6 | 0 | 0 | 300 |" in art.data, art.data
