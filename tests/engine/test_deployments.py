"""The curate deployments on a real Prefect server: `curate flows serve` registers them with their cron
schedule, a run triggered through the API is picked up by the serving process and scores the store.

The server and the serving process run in their own sessions (each with a fresh ``PREFECT_HOME``, so
the server has a fresh SQLite database) and are killed as process groups afterwards; the test process
talks to the server through a Prefect client pointed at it with ``temporary_settings``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from curate import connect
from tests.engine._procs import free_port as _free_port
from tests.engine._procs import tail as _tail

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CRON = "0 0 1 1 *"  # valid, and does not fire during the test

pytestmark = pytest.mark.slow


def _prefect_env(home: Path, api_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_", "PREFECT_PROFILE"))}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    if api_url:
        env["PREFECT_API_URL"] = api_url
    home.mkdir(parents=True, exist_ok=True)
    return env


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:  # own session: Prefect's children (uvicorn, flow-run processes) go with it
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)


@dataclass
class Server:
    api_url: str
    log: Path


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[Server]:
    port = _free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    log = tmp_path / "server.log"
    proc = _start([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
                  _prefect_env(tmp_path / "server-home", None), log)
    try:
        deadline = time.monotonic() + 180
        while True:
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{api_url}/health", timeout=5) as resp:
                if resp.status == 200 and json.loads(resp.read()) is True:
                    break
            if proc.poll() is not None:
                pytest.fail(f"prefect server exited with {proc.returncode}:\n{_tail(log)}")
            if time.monotonic() > deadline:
                pytest.fail(f"prefect server not healthy after 180s:\n{_tail(log)}")
            time.sleep(0.5)
        yield Server(api_url, log)
    finally:
        _kill_group(proc)


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
    served = _start([str(BIN / "curate"), "flows", "serve", "--store", str(sharded_store), "--scorers", "heuristics",
                     "--cron", CRON], _prefect_env(tmp_path / "serve-home", prefect_server.api_url), serve_log)

    def logs() -> str:
        return f"\n--- serve log ---\n{_tail(serve_log)}\n--- server log ---\n{_tail(prefect_server.log, 2000)}"

    async def scenario():
        async with get_client() as client:
            deadline = time.monotonic() + 180
            while True:  # `curate flows serve` registers the deployments one by one, then polls for runs
                try:
                    deployment = await client.read_deployment_by_name("score/curate-score")
                    other = await client.read_deployment_by_name("train-domain/curate-train-domain")
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
            return deployment, other, run, artifacts

    try:
        with temporary_settings({PREFECT_API_URL: prefect_server.api_url}):
            deployment, other, run, artifacts = asyncio.run(asyncio.wait_for(scenario(), timeout=480))
    finally:
        _kill_group(served)

    # the deployment as served: the cron schedule, tags and default parameters
    assert [(s.schedule.cron, s.active) for s in deployment.schedules] == [(CRON, True)]
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
