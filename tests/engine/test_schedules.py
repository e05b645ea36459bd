"""Scheduled deployments on a real ``prefect server start``: runs created by the server's scheduler, not by hand.

``run_deployment`` skips the scheduler, which is how a broken scheduler (Prefect 3.7.2 with SQLAlchemy 2.1:
"Can't evaluate bulk DML statement" on every loop, no schedule ever fires) went unseen. Here the server's
scheduler loop runs every second (``PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS``), the deployments
run on a short ``--interval``, and each test waits for a run with ``auto_scheduled`` set to complete:

- ``curate flows serve``: a landing directory is ingested on the schedule (bad lines in quarantine), a
  file dropped in later is ingested alone by a later scheduled run, and a scheduled score covers it;
- ``curate flows serve --mixture --mates-proxy``: the build-mixture and mates-stage deployments fire;
- ``curate flows deploy --pool`` + ``prefect worker start``: a work pool's worker picks up a scheduled ingest.

Every wait fails at once, naming the exception, if the server log shows a traceback (the next
incompatible upgrade of Prefect's stack shows up here first), a run fails, or a process exits.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from curate import connect
from curate.embedded import write_jsonl
from tests.engine._procs import (
    BIN,
    free_port,
    kill_group,
    prefect_env,
    start_group,
    start_prefect_server,
    tail,
)

pytestmark = pytest.mark.slow

INTERVAL = "20"  # seconds between scheduled runs: long enough for a flow run to finish on 2 busy cores
#: the server's scheduler every 2 s (default 60 s), so a new deployment's runs exist within seconds; a run that
#: comes due while its deployment's one slot is still taken (a tick that outlasts the interval, such as the first
#: MATES stage) is tried again after 2 s, not Prefect's default 30 s, which the test would sit out idle
SERVER_ENV = {"PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
              "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "2"}
#: the serving process and the worker look for due runs every 2 s (defaults: 10 s, 10 s)
CLIENT_ENV = {"PREFECT_RUNNER_POLL_FREQUENCY": "2", "PREFECT_WORKER_QUERY_SECONDS": "2"}
#: SQLite write contention between the server's loops and the pollers: the request fails, the client retries
TRANSIENT = ("database is locked",)
PIPELINE = "pipeline/curate-pipeline"
BAD_LINES = {3: b"{not json", 7: b'{"id": "no-text"}', 11: b"[1, 2]", 15: b'{"id": "blank", "text": ""}'}


def server_exceptions(log: Path) -> list[str]:
    """Each traceback in the server log as 'ExceptionType: message (in <its last frame>)', but transient ones."""
    text = log.read_text(errors="replace") if log.exists() else ""
    found = []
    for block in re.split(r"(?=Traceback \(most recent call last\):)", text)[1:]:
        lines = block.splitlines()
        frames = [ln.strip() for ln in lines if ln.strip().startswith("File ")]
        exc = next((ln.strip() for ln in lines[1:] if re.match(r"^[\w.]+(Error|Exception|Exit|Interrupt)\b", ln.strip())
                    or re.match(r"^[\w.]+\.[A-Z]\w+: ", ln.strip())), lines[-1].strip())
        if not any(msg in exc for msg in TRANSIENT):
            found.append(f"{exc} (in {frames[-1] if frames else '?'})")
    return found


class Pipeline:
    """A Prefect server with a fast scheduler, the processes under test, and waits on its flow runs."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.port = tmp, free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.server_log = tmp / "server.log"
        self.logs: dict[str, Path] = {"server": self.server_log}
        self.procs: dict[str, subprocess.Popen] = {}
        self.server = start_prefect_server(tmp / "server-home", self.port, self.server_log, env=SERVER_ENV)

    def env(self, name: str) -> dict[str, str]:
        return prefect_env(self.tmp / f"{name}-home", self.api_url) | CLIENT_ENV

    def start(self, name: str, cmd: list[str]) -> None:
        self.logs[name] = self.tmp / f"{name}.log"
        self.procs[name] = start_group(cmd, self.env(name), self.logs[name])

    def run(self, cmd: list[str]) -> str:
        done = subprocess.run(cmd, env=self.env("cli"), capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, f"{' '.join(cmd)}: exit {done.returncode}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        return done.stdout

    def context(self) -> str:
        return "".join(f"\n--- {name} log ---\n{tail(log, 3000)}" for name, log in self.logs.items())

    def check_healthy(self) -> None:
        """Fail now, naming it, if the server logged an exception or a process under test exited."""
        errors = server_exceptions(self.server_log)
        if errors:
            pytest.fail("the Prefect server raised (a scheduler that raises never creates a scheduled run):\n  "
                        + "\n  ".join(errors) + self.context())
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode}{self.context()}")

    def wait_for_run(self, deployment: str, after: datetime | None = None, timeout: float = 240) -> Any:
        """The first scheduler-created run of ``deployment`` (flow/name) started after ``after``, once completed."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterDeploymentId,
        )
        from prefect.exceptions import ObjectNotFound
        from prefect.settings import PREFECT_API_URL, temporary_settings

        async def poll() -> Any:
            async with get_client() as client:
                deadline = time.monotonic() + timeout
                dep = None
                while True:
                    self.check_healthy()
                    if dep is None:
                        try:
                            dep = await client.read_deployment_by_name(deployment)
                        except ObjectNotFound:
                            pass
                    if dep is not None:
                        runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                            deployment_id=FlowRunFilterDeploymentId(any_=[dep.id])))
                        started = sorted((r for r in runs if r.start_time and (after is None or r.start_time > after)),
                                         key=lambda r: r.start_time)
                        for r in started:
                            if r.state.is_final() and not r.state.is_completed():
                                pytest.fail(f"scheduled run {r.name} of {deployment} ended {r.state.type.value}: "
                                            f"{r.state.message}{self.context()}")
                        if started and started[0].state.is_completed():
                            return dep, started[0]
                    if time.monotonic() > deadline:
                        pytest.fail(f"no scheduled run of {deployment} completed within {timeout:g}s"
                                    f"{' after ' + after.isoformat() if after else ''}{self.context()}")
                    await asyncio.sleep(1)

        with temporary_settings({PREFECT_API_URL: self.api_url}):
            dep, run = asyncio.run(poll())
        assert run.auto_scheduled, f"{run.name} was not created by the scheduler"
        assert run.deployment_id == dep.id
        return run

    def close(self) -> None:
        for proc in [*self.procs.values(), self.server]:
            kill_group(proc)


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    p = Pipeline(tmp_path)
    try:
        yield p
    finally:
        p.close()


def land(directory: Path, name: str, docs: list[dict[str, Any]], bad: dict[int, bytes]) -> Path:
    """Drop a JSON-lines file into the landing directory the way a producer should: write aside, then rename."""
    directory.mkdir(exist_ok=True)
    aside = write_jsonl(directory.parent / f".{name}.part", [{"id": d["id"], "text": d["text"], "domain": d["domain"]}
                                                            for d in docs], raw_lines=bad)
    return Path(os.replace(aside, directory / name) or directory / name)


def now() -> datetime:
    return datetime.now(timezone.utc)


def wait_for(cond: Callable[[], bool], what: str, pipeline: Pipeline, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        pipeline.check_healthy()
        if time.monotonic() > deadline:
            pytest.fail(f"not {what} after {timeout:g}s{pipeline.context()}")
        time.sleep(1)


def test_served_schedule_ingests_the_landing_directory_then_only_new_files(pipeline, real_docs, tmp_path):
    store, landing = tmp_path / "st", tmp_path / "land"
    landing.mkdir()  # nothing has landed yet: the first ticks create the store and have nothing to do
    pipeline.start("serve", [str(BIN / "curate"), "flows", "serve", "--store", str(store), "--input", str(landing),
                             "--corpus", "landing", "--scorers", "heuristics", "--workers", "0",
                             "--interval", INTERVAL])
    empty = pipeline.wait_for_run(PIPELINE)
    assert (store / "store.json").exists() and not (store / "shards" / "landing").exists()

    land(landing, "batch-1.jsonl", real_docs[:25], BAD_LINES)
    first = pipeline.wait_for_run(PIPELINE, after=empty.end_time)
    con = connect(store)
    assert con.execute("SELECT count(*) FROM docs WHERE corpus = 'landing'").fetchone()[0] == 25
    reasons = dict(con.execute("SELECT reason, sum(count) FROM quarantine GROUP BY 1").fetchall())
    assert reasons == {"malformed_json": 1, "missing_text": 1, "not_object": 1, "empty_text": 1}, reasons
    lines = sorted(r[0] for r in con.execute("SELECT position FROM quarantine").fetchall())
    assert lines == [4, 9, 14, 19], lines  # 1-based lines of the bad records among the good ones
    # the same tick scored what it ingested (ingest -> score, in order)
    assert con.execute("SELECT count(*) FROM docs ANTI JOIN heuristics USING (doc_id)").fetchone()[0] == 0
    # ... and ended with the store's static report (the empty ticks before had nothing to show)
    index, state = store / "report" / "index.html", store / "report" / "state.json"
    assert "landing" in index.read_text()
    written = json.loads(state.read_text())["state"]

    land(landing, "batch-2.jsonl", real_docs[25:35], {5: b"{broken"})
    pipeline.wait_for_run(PIPELINE, after=first.end_time)
    manifest = json.loads((store / "shards" / "landing" / "_manifest.json").read_text())
    runs = [r for r in manifest["runs"] if r["status"] == "done" and r["counts"]["read"] > 0]
    assert [[Path(i["name"]).name for i in r["inputs"]] for r in runs] == [["batch-1.jsonl"], ["batch-2.jsonl"]]
    assert runs[1]["counts"]["read"] == 11 and runs[1]["counts"]["kept"] == 10
    con = connect(store)
    assert con.execute("SELECT count(*), count(DISTINCT doc_id) FROM docs").fetchone() == (35, 35)
    assert con.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 5
    assert con.execute("SELECT count(*), count(DISTINCT doc_id) FROM heuristics").fetchone() == (35, 35)
    assert json.loads(state.read_text())["state"] != written  # the store changed: the report was rewritten
    pipeline.check_healthy()


def test_served_schedule_rebuilds_the_mixture_and_runs_the_next_mates_stage(pipeline, real_docs, tmp_path):
    from curate import ingest
    from curate.lm.train import train_lm
    from tests.mates.conftest import PROXY
    from tests.mixture._specs import spec_dict

    store = tmp_path / "st"
    docs = write_jsonl(tmp_path / "docs.jsonl", [{"id": d["id"], "text": d["text"], "domain": d["domain"]}
                                                 for d in real_docs])
    ingest([docs], store, "c", progress=False)
    train_lm(store, "proxy", **PROXY)
    spec = tmp_path / "sched.yaml"
    spec.write_text(yaml.safe_dump(spec_dict(name="sched")))
    mates = {"reference_sql": "SELECT text FROM docs WHERE domain = 'encyclopedic'",
             "pool_sql": "SELECT doc_id, text, domain FROM docs WHERE domain <> 'encyclopedic'",
             "probes": 30, "probe_percent": 50, "threads": 1,
             "influence_options": {"chunk_tokens": 64, "max_chunks": 1}}
    pipeline.start("serve", [str(BIN / "curate"), "flows", "serve", "--store", str(store), "--scorers", "heuristics",
                             "--workers", "0", "--interval", INTERVAL, "--mixture", str(spec), "--mates-proxy", "proxy",
                             *[a for k, v in mates.items() for a in ("--param", f"mates-stage.{k}={json.dumps(v)}")]])

    run = pipeline.wait_for_run("mates-stage/curate-mates-stage")
    stage_json = store / "mates" / "scheduled" / "stage-0" / "stage.json"
    stage = json.loads(stage_json.read_text())
    assert stage["stage"] == 0 and stage["oracle"]["probes"] == 30
    stamp = os.stat(stage_json).st_mtime_ns
    # the checkpoint did not change: the next scheduled run reuses stage 0 and starts no stage 1
    again = pipeline.wait_for_run("mates-stage/curate-mates-stage", after=run.end_time)
    assert os.stat(stage_json).st_mtime_ns == stamp
    assert not (store / "mates" / "scheduled" / "stage-1").exists()

    # a tick after the stage's feature table landed builds the mixture over the scored store ...
    built = pipeline.wait_for_run(PIPELINE, after=again.end_time)
    manifest = store / "mixtures" / "sched" / "manifest.json"
    data = json.loads(manifest.read_text())
    assert data["name"] == "sched" and data["tokens"]["target"] == spec_dict()["tokens"] and data["rows"] > 0
    assert {"features/heuristics", "features/mates_scheduled_s0"} <= set(data["store"])
    stamp = os.stat(manifest).st_mtime_ns
    # ... and with nothing changed since, the next tick leaves it (and the files a job streams) alone
    pipeline.wait_for_run(PIPELINE, after=built.end_time)
    assert os.stat(manifest).st_mtime_ns == stamp
    pipeline.check_healthy()


def test_work_pool_worker_runs_the_scheduled_pipeline(pipeline, real_docs, tmp_path):
    store, landing = tmp_path / "st", tmp_path / "land"
    land(landing, "batch-1.jsonl", real_docs[:25], BAD_LINES)
    pipeline.run([str(BIN / "prefect"), "work-pool", "create", "curate-test", "--type", "process"])
    out = pipeline.run([str(BIN / "curate"), "flows", "deploy", "--pool", "curate-test", "--store", str(store),
                        "--input", str(landing), "--corpus", "landing", "--scorers", "heuristics", "--workers", "0",
                        "--interval", INTERVAL])
    assert "deployed curate-pipeline to pool curate-test" in out, out
    pipeline.start("worker", [str(BIN / "prefect"), "worker", "start", "--pool", "curate-test"])

    pipeline.wait_for_run(PIPELINE)
    con = connect(store)
    assert con.execute("SELECT count(*) FROM docs WHERE corpus = 'landing'").fetchone()[0] == 25
    assert con.execute("SELECT sum(count) FROM quarantine").fetchone()[0] == 4
    assert con.execute("SELECT count(*) FROM docs ANTI JOIN heuristics USING (doc_id)").fetchone()[0] == 0
    pipeline.check_healthy()
