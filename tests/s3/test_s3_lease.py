"""Leases on an S3 store (moto's server): two drivers never do the same work, a dead driver's lease expires.

The lease is the store lock where there is no flock: a conditional create (If-None-Match: *), renewals
with If-Match, and a take-over of an expired lease that only one driver can win.
"""

from __future__ import annotations

import json
import logging
import time

import pytest

from curate import ingest
from curate.embedded import write_jsonl
from curate.lease import object_store_lease
from curate.locks import LockedError
from curate.store import Store
from tests.engine._procs import BIN, kill_group, start_group, tail
from tests.s3.conftest import BUCKET

URI = f"s3://{BUCKET}/lease-store"


@pytest.fixture(scope="module")
def s3_store(s3_endpoint, tmp_path_factory, real_docs) -> Store:
    tmp = tmp_path_factory.mktemp("lease")
    records = [{"id": d["id"], "text": d["text"], "domain": d["domain"]} for d in real_docs]
    ingest([write_jsonl(tmp / "docs.jsonl", records)], URI, "c", shard_rows=40, progress=False)
    return Store.open(URI)


def _lease(s3_client, name: str) -> dict:
    return json.loads(s3_client.get_object(Bucket=BUCKET, Key=f"lease-store/locks/{name}.lease")["Body"].read())


def test_one_holder_at_a_time_renewed_and_released(s3_store, s3_client, monkeypatch):
    monkeypatch.setenv("CURATE_LEASE_TTL", "3")  # renewed every second: a busy machine still keeps up
    with object_store_lease(s3_store, "t1", "hold it") as waited:
        assert waited is None
        first = _lease(s3_client, "t1")
        with pytest.raises(LockedError, match=r"another driver holds the lease .*hold it"):
            with object_store_lease(s3_store, "t1", "take it too", timeout=0):
                pass
        time.sleep(4.5)  # longer than the ttl: only renewals keep it ours
        with pytest.raises(LockedError):
            with object_store_lease(s3_store, "t1", "take it too", timeout=0):
                pass
        assert _lease(s3_client, "t1")["expires"] > first["expires"]
    assert not s3_client.list_objects_v2(Bucket=BUCKET, Prefix="lease-store/locks/t1").get("Contents")
    with object_store_lease(s3_store, "t1", "again", timeout=0) as waited:
        assert waited is None


def test_a_dead_drivers_expired_lease_is_taken_over_with_a_line(s3_store, s3_client, caplog):
    dead = {"pid": 4242, "host": "node-7", "started": "2026-12-05T00:00:00+00:00", "what": "score 'x'",
            "expires": time.time() - 5, "expires_at": "five seconds ago"}
    s3_client.put_object(Bucket=BUCKET, Key="lease-store/locks/t2.lease", Body=json.dumps(dead).encode())
    with caplog.at_level(logging.WARNING, logger="curate.lease"):
        with object_store_lease(s3_store, "t2", "take over", timeout=0) as waited:
            assert waited is not None and (waited.pid, waited.host) == (4242, "node-7")
            assert _lease(s3_client, "t2")["what"] == "take over"
    assert "pid 4242 on host node-7" in caplog.text and "taken over" in caplog.text


@pytest.mark.slow
def test_two_drivers_on_one_s3_store_score_each_document_once(s3_store, s3_client, tmp_path):
    env = dict(__import__("os").environ, COLUMNS="1000", CURATE_LEASE_TTL="20",
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180")
    procs = []
    for i in range(2):
        procs.append((start_group([str(BIN / "curate"), "score", "--scorers", "heuristics", "--store", URI,
                                   "--workers", "1"], dict(env, PREFECT_HOME=str(tmp_path / f"prefect-{i}")),
                                  tmp_path / f"driver-{i}.log", cwd=tmp_path), tmp_path / f"driver-{i}.log"))
    try:
        codes = [p.wait(timeout=600) for p, _ in procs]
    finally:
        for p, _ in procs:
            kill_group(p)
    logs = [tail(log, 20000) for _, log in procs]
    assert codes == [0, 0], "\n\n".join(logs)
    assert sum("which holds the lease" in " ".join(text.split()) for text in logs) == 1, "\n\n".join(logs)
    manifest = json.loads(s3_client.get_object(Bucket=BUCKET, Key="lease-store/features/heuristics/_manifest.json")
                          ["Body"].read())
    assert {s["status"] for s in manifest["shards"].values()} == {"done"}
    import pyarrow.dataset as ds

    ids = ds.dataset(s3_store.path("features", "heuristics"), filesystem=s3_store.fs, format="parquet") \
        .to_table(columns=["doc_id"]).column("doc_id").to_pylist()
    docs = ds.dataset(s3_store.path("shards", "c"), filesystem=s3_store.fs, format="parquet").count_rows()
    assert len(ids) == len(set(ids)) == docs  # exactly one row per document
