"""The Prefect server goes away while a `curate score` flow runs against it (``PREFECT_API_URL``).

What Prefect 3.7 does, as seen here: the flow run talks to the server over HTTP for its own
state, task-run creation, logs and artifacts, and over a websocket for events (task-run states
travel as events). Every HTTP request that finds the server gone is retried by Prefect's client
5 times with exponential backoff (2, 4, 8, 16, 32 s, jittered: about a minute;
``PREFECT_CLIENT_MAX_RETRIES``); ``ConnectError`` is retried once the client has connected
before. Logs that cannot be sent are dropped ("--- Error logging to API ---"), and events that
cannot be sent are dropped too ("Service 'EventsWorker' failed with N pending items"): after a
restart the server may have no record of the score task run at all (seen here), or one stuck in
Running, although the flow run is Completed. The scoring itself never waits on the server: shards
are written to the store and the store's manifest tells the truth whatever the server saw.

- Server back within the retry window: the flow finishes (exit 0) and the server records the
  flow run as Completed with its summary artifact. (A restart here takes seconds; the test allows
  7 retries, about four minutes, so that a slow machine's restart cannot fail it.)
- Server not back in time: after the retries of the summary artifact and then of the Failed state,
  ``curate`` exits 2 with one line naming the server and what to do (no traceback); every shard
  scored before is kept. A rerun against the server once it is back completes, skipping them all.

The server runs in its own session with a fresh SQLite database (``PREFECT_HOME``), is SIGKILLed
as a process group, and is restarted on the same port and database. The flow runs in a child
process with ``heuristics`` held at a gate, so the server dies while a shard is being scored.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine._procs import (
    BIN,
    free_port,
    kill_group,
    prefect_env,
    start_group,
    start_prefect_server,
    tail,
    wait_until,
)
from tests.reliability.conftest import one_row_per_doc
from tests.reliability.slow_scorer import GatedHeuristics

pytestmark = pytest.mark.slow


def _server_records(api_url: str) -> tuple[list, list, list]:
    """(flow runs, task runs, curate-score artifacts) as the server has them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def read():
        async with get_client() as client:
            return (await client.read_flow_runs(), await client.read_task_runs(),
                    await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["curate-score"]))))

    with temporary_settings({PREFECT_API_URL: api_url}):
        return asyncio.run(asyncio.wait_for(read(), timeout=120))


def _check_store(store: Path) -> None:
    """Every document has one row, no temporary is left, and the manifest says all six shards are done."""
    feat = store / "features" / "heuristics"
    assert one_row_per_doc(store, "heuristics") == 300
    assert not list(feat.glob("*.tmp"))
    shards = json.loads((feat / "_manifest.json").read_text())["shards"]
    assert len(shards) == 6 and {s["status"] for s in shards.values()} == {"done"}


class Outage:
    """A Prefect server, and a `curate score` flow against it that is mid-shard when the server is killed."""

    def __init__(self, store: Path, tmp: Path, flow_env: dict[str, str] | None = None) -> None:
        self.store, self.port = store, free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.home, self.server_log, self.flow_log = tmp / "server-home", tmp / "server.log", tmp / "flow.log"
        self.env = prefect_env(tmp / "flow-home", self.api_url) | (flow_env or {})
        self.gate = tmp / "gate"
        self.gate.mkdir()
        self.server = start_prefect_server(self.home, self.port, self.server_log)
        self.flow: subprocess.Popen | None = None

    def run_and_kill_server(self) -> None:
        """Start the flow, kill the server while a shard is being scored, then let scoring go on."""
        self.flow = start_group([sys.executable, "-m", "tests.reliability._child", "gated_cli", "score", "--scorers",
                                 "heuristics", "--set", f"heuristics.gate={self.gate}", "--workers", "0",
                                 "--store", str(self.store)], self.env, self.flow_log)
        wait_until(lambda: any(self.gate.glob("started-*")), "shard started", self.flow, self.flow_log)
        kill_group(self.server)
        (self.gate / GatedHeuristics.OPEN).touch()
        feat = self.store / "features" / "heuristics"
        # the flow scores every shard with no server; only its reports to the server are pending
        wait_until(lambda: len(list(feat.glob("*.parquet"))) == 6, "six feature files", self.flow, self.flow_log)

    def restart_server(self) -> None:
        self.server = start_prefect_server(self.home, self.port, self.server_log)

    def flow_result(self) -> tuple[int, str]:
        assert self.flow is not None
        try:
            rc = self.flow.wait(timeout=400)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the flow did not end 400s after the server went away:\n{tail(self.flow_log)}")
        return rc, tail(self.flow_log, 20000)

    def rerun(self) -> str:
        """`curate score` again against the server, as a user would: it must complete and skip every shard."""
        done = subprocess.run([str(BIN / "curate"), "score", "--scorers", "heuristics", "--workers", "0", "--store",
                               str(self.store)], env=self.env, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done.stdout

    def close(self) -> None:
        for proc in (self.flow, self.server):
            if proc is not None:
                kill_group(proc)


@pytest.fixture
def outage(sharded_store, tmp_path):
    made: list[Outage] = []

    def make(**kwargs) -> Outage:
        made.append(Outage(sharded_store, tmp_path, **kwargs))
        return made[-1]

    yield make
    for o in made:
        o.close()


def test_server_restarted_mid_flow_the_flow_finishes(outage):
    o = outage(flow_env={"PREFECT_CLIENT_MAX_RETRIES": "7"})
    o.run_and_kill_server()
    o.restart_server()  # same port, same database, within the client's retry window
    rc, log = o.flow_result()
    assert rc == 0, log
    assert "Flow run" in log and "Finished in state Completed()" in log
    _check_store(o.store)
    flow_runs, task_runs, artifacts = _server_records(o.api_url)
    [run] = flow_runs
    assert run.state.is_completed()  # the final state reached the server once it was back
    assert [a.flow_run_id for a in artifacts] == [run.id]  # so did the summary
    assert all(t.name == "score-heuristics" for t in task_runs)  # none, or the one whose events got through
    out = o.rerun()
    assert "│ heuristics │           0 │                    6 │      0 │" in out, out
    _check_store(o.store)


def test_server_gone_for_good_fails_with_one_clear_line(outage):
    # one retry instead of five: the same path to the same message, without waiting minutes
    o = outage(flow_env={"PREFECT_CLIENT_MAX_RETRIES": "1"})
    o.run_and_kill_server()
    rc, log = o.flow_result()
    assert rc == 2, log
    said = " ".join(log.split())
    assert (f"error: lost the Prefect server at {o.api_url} (ConnectError: [Errno 111] Connection refused) after "
            "Prefect's client retries. What the run finished before that is kept in the store; start the server "
            "again (or unset PREFECT_API_URL to let curate start a temporary one) and re-run the same command: "
            "finished work is skipped") in said, log
    assert "Traceback" not in log.split("error: lost the Prefect server")[1], log  # (Prefect logs the flow's error first)
    _check_store(o.store)  # the work was done and recorded although the server never heard of it
    o.restart_server()
    out = o.rerun()
    assert "│ heuristics │           0 │                    6 │      0 │" in out, out
    _check_store(o.store)
