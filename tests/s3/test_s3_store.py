"""The store on an S3-compatible server: ingest -> score -> DuckDB -> mixture -> loader, as on a local directory.

The server is moto's S3 server on 127.0.0.1 (conftest); curate reaches it only
through the standard AWS environment variables. Everything else is real:
curate, pyarrow's S3 filesystem, DuckDB, Ray.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
import torch

from curate import MixtureDataset, connect, ingest
from curate.embedded import write_jsonl
from curate.errors import CurateError
from curate.execute import run_scorer
from curate.mixture import build_mixture, load_spec
from curate.readonly import ReadOnlyError, run_read_only
from curate.store import Store, StoreError
from scorers.registry import get_scorer
from tests.mixture._specs import spec_dict
from tests.s3.conftest import BUCKET, REGION, free_port

URI = f"s3://{BUCKET}/store"
SHARD_ROWS = 64  # 320 documents: 5 shards, so workers have several units
BAD_LINES = {40: b'{"text": "unterminated', 130: b'["not", "an", "object"]', 250: b'{"id": "no-text"}'}


def _records(real_docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": d["id"], "text": d["text"], "domain": d["domain"]} for d in real_docs]


def _keys(s3_client, prefix: str = "store/") -> list[str]:
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _one_row_per_doc(con, table: str) -> int:
    docs = con.execute("SELECT count(*) FROM docs").fetchone()[0]
    rows, distinct = con.execute(f"SELECT count(*), count(DISTINCT doc_id) FROM {table}").fetchone()
    assert rows == distinct == docs
    assert con.execute(f"SELECT count(*) FROM docs ANTI JOIN {table} USING (doc_id)").fetchone()[0] == 0
    return docs


@pytest.fixture(scope="module")
def jsonl(tmp_path_factory, real_docs) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("s3-in") / "docs.jsonl", _records(real_docs), raw_lines=BAD_LINES)


@pytest.fixture(scope="module")
def ingested(s3_endpoint, jsonl):
    return ingest([jsonl], URI, "c", shard_rows=SHARD_ROWS, progress=False)


@pytest.fixture(scope="module")
def local_twin(tmp_path_factory, jsonl) -> Store:
    """The same input ingested into a local directory: what the S3 store must match."""
    path = tmp_path_factory.mktemp("s3-twin") / "store"
    ingest([jsonl], path, "c", shard_rows=SHARD_ROWS, progress=False)
    return Store.open(path)


@pytest.fixture(scope="module")
def scored(ingested):
    return run_scorer(URI, get_scorer("heuristics"), workers=0, progress=False)


def test_ingest_writes_shards_and_quarantine_to_the_bucket(ingested, s3_client):
    s = ingested
    assert (s.read, s.kept, s.quarantined, s.duplicates) == (323, 320, 3, 0)
    assert s.reasons == {"malformed_json": 1, "not_object": 1, "missing_text": 1}
    keys = _keys(s3_client)
    assert [k for k in keys if k.startswith("store/shards/c/") and k.endswith(".parquet")] == [
        f"store/shards/c/part-{i:05d}.parquet" for i in range(5)]
    assert not [k for k in keys if k.endswith(".tmp")]  # every temporary was published or removed
    con = connect(URI)
    assert con.execute("SELECT count(*), count(DISTINCT doc_id) FROM docs").fetchone() == (320, 320)
    q = con.execute("SELECT position, reason FROM quarantine ORDER BY position").fetchall()
    assert q == [(41, "malformed_json"), (132, "not_object"), (253, "missing_text")]


def test_rerun_of_the_same_ingest_does_nothing(ingested, jsonl, s3_client):
    def etags() -> dict[str, str]:
        return {k: s3_client.head_object(Bucket=BUCKET, Key=k)["ETag"] for k in _keys(s3_client, "store/shards/")}

    before = etags()
    again = ingest([jsonl], URI, "c", shard_rows=SHARD_ROWS, progress=False)
    assert again.status == "already-ingested" and again.kept == 320
    assert etags() == before  # not one object rewritten


def test_docs_on_s3_equal_the_local_twin(ingested, local_twin):
    sql = "SELECT doc_id, corpus, text, domain, n_bytes FROM docs ORDER BY doc_id"
    assert connect(URI).execute(sql).fetchall() == connect(local_twin).execute(sql).fetchall()


def test_ingest_on_ray_workers_into_the_bucket_equals_the_local_twin(s3_endpoint, jsonl, local_twin, s3_client):
    """Two Ray workers (which reach the bucket only through the settings curate hands them) read the input in
    byte ranges and commit into S3: same documents, quarantine and counts as the single-process local twin."""
    uri = f"s3://{BUCKET}/ray-store"
    summary = ingest([jsonl], uri, "c", shard_rows=SHARD_ROWS, workers=2, piece_bytes=jsonl.stat().st_size // 3,
                     progress=False)
    assert summary.read == summary.kept + summary.quarantined + summary.duplicates
    assert summary.quarantined == len(BAD_LINES)
    for sql in ("SELECT doc_id, corpus, text, domain, n_bytes FROM docs ORDER BY doc_id",
                "SELECT input, position, reason FROM quarantine ORDER BY position"):
        assert connect(uri).execute(sql).fetchall() == connect(local_twin).execute(sql).fetchall()
    assert not [k for k in _keys(s3_client, "ray-store/") if k.endswith(".tmp") or "/stage-" in k]
    again = ingest([jsonl], uri, "c", shard_rows=SHARD_ROWS, workers=2, progress=False)
    assert again.status == "already-ingested" and again.kept == summary.kept  # the same input: nothing to do


def test_inline_scoring_gives_one_row_per_doc_and_a_rerun_skips(scored):
    assert scored.ok and (scored.done, scored.skipped, scored.rows) == (5, 0, 320)
    con = connect(URI)
    assert _one_row_per_doc(con, "heuristics") == 320
    # doc_features joins the feature table, pushed-down filters and all
    n = con.execute("SELECT count(*) FROM doc_features WHERE n_words > 0 AND domain = 'code'").fetchone()[0]
    assert 0 < n <= 40
    again = run_scorer(URI, get_scorer("heuristics"), workers=0, progress=False)
    assert (again.done, again.skipped) == (0, 5)
    # what `curate sql` runs: a locked connection over the same views
    locked = connect(URI, read_only=True)
    assert run_read_only(locked, "SELECT count(*) FROM doc_features").fetchall() == [(320,)]
    with pytest.raises(ReadOnlyError):
        run_read_only(locked, "DROP VIEW docs")


def test_a_damaged_feature_file_is_named_and_a_rerun_recomputes_only_it(scored, s3_client):
    key = "store/features/heuristics/c--part-00002.parquet"
    good = s3_client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    s3_client.put_object(Bucket=BUCKET, Key=key, Body=good[: len(good) // 2])  # changed outside curate
    with pytest.raises(CurateError, match=r"(?s)c--part-00002\.parquet.*re-run `curate score`"):
        connect(URI)
    fixed = run_scorer(URI, get_scorer("heuristics"), workers=0, progress=False)
    assert (fixed.done, fixed.skipped) == (1, 4)
    assert _one_row_per_doc(connect(URI), "heuristics") == 320


def test_ray_workers_score_the_s3_store_like_inline(scored, s3_client):
    table = "SELECT * FROM heuristics ORDER BY doc_id"
    inline = connect(URI).execute(table).fetchall()
    feature_keys = [k for k in _keys(s3_client, "store/features/heuristics/") if k.endswith(".parquet")]
    assert len(feature_keys) == 5
    for k in feature_keys:
        s3_client.delete_object(Bucket=BUCKET, Key=k)
    on_ray = run_scorer(URI, get_scorer("heuristics"), workers=1, progress=False)
    assert on_ray.ok and (on_ray.done, on_ray.workers) == (5, 1)
    con = connect(URI)
    assert con.execute(table).fetchall() == inline
    _one_row_per_doc(con, "heuristics")
    assert run_scorer(URI, get_scorer("heuristics"), workers=1, progress=False).skipped == 5


def test_a_failed_write_leaves_no_object_a_reader_would_see(ingested, s3_client):
    st = Store.open(URI)
    with pytest.raises(RuntimeError, match="scorer crashed"), st.atomic_output("features/broken/c--part-00000.parquet") as out:
        out.write(b"PAR1 half a file")
        raise RuntimeError("scorer crashed mid-file")
    # neither the final key nor the temporary exists (pyarrow's empty directory marker may)
    assert [k for k in _keys(s3_client, "store/features/broken/") if not k.endswith("/")] == []
    assert "broken" not in st.feature_tables()


def test_mixture_builds_on_s3_and_streams_like_the_local_twin(scored, local_twin):
    spec = spec_dict(name="s3mix", tokens=150_000)
    spec["where"] = ["n_words > 0"]  # through doc_features: the feature table joins on S3
    run_scorer(local_twin, get_scorer("heuristics"), workers=0, progress=False)
    remote = build_mixture(URI, load_spec(spec), part_tokens=60_000)
    local = build_mixture(local_twin, load_spec(spec), part_tokens=60_000)
    assert len(remote.parts) >= 2
    for key in ("rows", "tokens", "phases", "parts", "shortfalls", "spec_hash", "store"):
        assert remote.data[key] == local.data[key], key
    st = Store.open(URI)
    assert {Path(p).name for p in st.list_files(st.mixtures_dir("s3mix"), suffix="")} >= {
        "plan.parquet", "manifest.json", "report.md", "domain_share.png", "tokens.png"}
    ds_remote, ds_local = MixtureDataset(URI, "s3mix", seq_len=512), MixtureDataset(local_twin, "s3mix", seq_len=512)
    windows = list(ds_remote)
    assert len(windows) == ds_remote.total_windows == ds_local.total_windows > 100
    assert all(torch.equal(a, b) for a, b in zip(windows, ds_local, strict=True))
    # lineage reads the plan through pyarrow on S3 (DuckDB would need its httpfs extension, not installable
    # offline): a document's uses are the local twin's
    import pyarrow.parquet as pq

    from curate.lineage import uses_of

    with st.fs.open_input_file(st.path("mixtures/s3mix/plan.parquet")) as f:
        first = pq.read_table(f, columns=["doc_id"]).column(0)[0].as_py()
    assert uses_of(URI, first)["uses"] == uses_of(local_twin, first)["uses"] != []


def test_report_is_written_into_the_bucket_and_left_alone_while_nothing_changes(scored, s3_client):
    """`curate report` without --out on an object store: the pages land under report/ in the bucket (what a
    scheduled deployment does after each tick), with working relative links, and a second call with nothing
    changed rewrites nothing."""
    from curate.browse.static import write_report_to_store

    first = write_report_to_store(URI, max_docs=5, docs_per_list=1, only_if_changed=True)
    keys = {k for k in _keys(s3_client, "store/report/") if not k.endswith("/")}  # not pyarrow's folder markers
    assert not first.unchanged and first.documents == 5
    assert {"store/report/index.html", "store/report/documents.html", "store/report/state.json",
            "store/report/not-in-report.html"} <= keys
    assert len([k for k in keys if k.startswith("store/report/doc/")]) == 5
    index = s3_client.get_object(Bucket=BUCKET, Key="store/report/index.html")["Body"].read().decode()
    assert 'href="documents.html"' in index and 'href="/' not in index  # relative links only
    again = write_report_to_store(URI, max_docs=5, docs_per_list=1, only_if_changed=True)
    assert again.unchanged and {k for k in _keys(s3_client, "store/report/") if not k.endswith("/")} == keys


def test_bad_credentials_say_which_endpoint_and_which_variables(ingested, s3_endpoint, monkeypatch):
    # moto checks signatures only once told to: turn it on for this test, with one real IAM user
    import boto3

    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="curate")
    iam.put_user_policy(UserName="curate", PolicyName="s3", PolicyDocument=(
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}'))
    key = iam.create_access_key(UserName="curate")["AccessKey"]
    previous = requests.post(f"{s3_endpoint}/moto-api/reset-auth", data=b"0", timeout=10).json()
    try:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        assert Store.open(URI).corpora() == ["c"]  # the right keys still work with checking on
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        with pytest.raises(StoreError) as err:
            connect(URI)
    finally:
        requests.post(f"{s3_endpoint}/moto-api/reset-auth",
                      data=str(previous["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]).encode(), timeout=10)
    msg = str(err.value)
    assert URI in msg and s3_endpoint in msg
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_REGION"):
        assert var in msg


def test_a_missing_bucket_says_to_create_it(s3_endpoint):
    with pytest.raises(StoreError, match=r"(?s)no-such-bucket.*create the bucket first"):
        Store.open("s3://no-such-bucket/store", create=True)


def test_an_unreachable_endpoint_is_named(s3_endpoint, monkeypatch):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL", dead)
    with pytest.raises(StoreError, match=rf"(?s)at {dead}:.*start the server.*AWS_ENDPOINT_URL"):
        Store.open(URI)


def test_units_on_s3_resume_a_retried_shard_and_are_removed(scored, s3_client, tmp_path):
    """A shard scored in units of 20 on S3 (its one row group cut into ranges) fails mid-shard; the retry keeps the
    units already on the server, and the file equals an uninterrupted run's byte for byte."""
    from tests.reliability.unit_scorer import LoggedHeuristics, scored_twice

    key = "store/features/heuristics/c--part-00001.parquet"

    def rescore(log, **kw) -> bytes:
        s3_client.delete_object(Bucket=BUCKET, Key=key)
        report = run_scorer(URI, LoggedHeuristics(str(log), **kw), workers=0, unit_rows=20, progress=False)
        assert report.ok and (report.done, report.skipped) == (1, 4)
        # every unit object was removed (pyarrow's directory markers for units/ and units/heuristics/ may stay)
        assert not [k for k in _keys(s3_client, "store/units/") if not k.endswith("/")]
        return s3_client.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    resumed = rescore(tmp_path / "failed.log", fail_at=3)  # the third unit's batch raises once
    assert (tmp_path / "failed.killed").exists() and scored_twice(tmp_path / "failed.log") == 20
    assert rescore(tmp_path / "clean.log") == resumed
    assert scored_twice(tmp_path / "clean.log") == 0
    assert _one_row_per_doc(connect(URI), "heuristics") == 320
