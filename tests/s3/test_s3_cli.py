"""The `curate` command line against an S3 store, end to end: ingest, score (Prefect flow, Ray worker), sql.

Each command is the real console script in a child process that reaches the moto server (conftest) only
through the AWS variables it inherits, as a user's shell would.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from curate.embedded import write_jsonl
from tests.engine._procs import BIN, kill_group, start_group, tail
from tests.s3.conftest import BUCKET

URI = f"s3://{BUCKET}/cli-store"

pytestmark = pytest.mark.slow


def _curate(tmp_path: Path, name: str, *args: str) -> str:
    """Run ``curate <args>`` from ``tmp_path``; its output (the test fails on a non-zero exit)."""
    log = tmp_path / f"{name}-{len(list(tmp_path.glob('*.log')))}.log"  # a fresh log per command
    env = dict(os.environ, COLUMNS="1000", PREFECT_HOME=str(tmp_path / "prefect-home"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180")
    proc = start_group([str(BIN / "curate"), *args], env, log, cwd=tmp_path)
    try:
        rc = proc.wait(timeout=480)
    finally:
        kill_group(proc)  # the temporary Prefect server and the local Ray of `curate score` go with it
    assert rc == 0, f"curate {' '.join(args)} exited with {rc}:\n{tail(log, 6000)}"
    return log.read_text(errors="replace")


def _sql(tmp_path: Path, query: str) -> list[dict]:
    out = _curate(tmp_path, "sql", "sql", query, "--store", URI, "-f", "json")
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_cli_ingest_score_sql_on_s3(s3_endpoint, s3_client, tmp_path, real_docs):
    records = [{"id": d["id"], "text": d["text"], "domain": d["domain"]} for d in real_docs]
    path = write_jsonl(tmp_path / "docs.jsonl", records, raw_lines={7: b'{"text": "unterminated'})

    out = _curate(tmp_path, "ingest", "ingest", str(path), "--store", URI, "--corpus", "c", "--shard-rows", "100",
                  "--json")
    summary = json.loads(out[out.index("{"):])
    assert (summary["read"], summary["kept"], summary["quarantined"]) == (321, 320, 1)
    assert not (tmp_path / "s3:").exists()  # the URI reached the store as a URI, not as a local path "s3:/..."

    _curate(tmp_path, "score", "score", "--scorers", "heuristics", "--store", URI, "--workers", "1")
    manifest = json.loads(s3_client.get_object(Bucket=BUCKET, Key="cli-store/features/heuristics/_manifest.json")
                          ["Body"].read())
    assert len(manifest["shards"]) == 4 and {s["status"] for s in manifest["shards"].values()} == {"done"}

    assert _sql(tmp_path, "SELECT count(*) AS n, count(DISTINCT doc_id) AS ids FROM heuristics") == [
        {"n": 320, "ids": 320}]
    assert _sql(tmp_path, "SELECT count(*) AS missing FROM docs ANTI JOIN heuristics USING (doc_id)") == [
        {"missing": 0}]
    assert _sql(tmp_path, "SELECT position, reason FROM quarantine") == [{"position": 8, "reason": "malformed_json"}]
    rerun = _curate(tmp_path, "rerun", "score", "--scorers", "heuristics", "--store", URI, "--workers", "1")
    assert "│ heuristics │           0 │                    4 │      0 │" in rerun, rerun
