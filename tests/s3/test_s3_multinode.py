"""Scoring on a Ray cluster of several nodes (``ray.cluster_utils.Cluster``, as Ray tests itself: a head and
three one-CPU worker nodes, each its own raylet and worker processes on this machine) over one store on the
moto S3 server that every node reads and writes.

The shards spread over the nodes; a node removed while it is scoring a shard takes its worker with it, and
its shard goes to the workers left (the cluster has no CPU for a replacement): every document ends up with
exactly one row, the documents scored twice are at most the unit the lost worker was in, and the run's
report (and so the score flow's artifact) names the node.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curate import connect, ingest
from curate.embedded import write_jsonl
from curate.execute import run_scorer
from curate.store import Store
from flows.score import reports_markdown
from tests.s3.conftest import BUCKET
from tests.s3.node_scorer import NodeGatedHeuristics

pytestmark = pytest.mark.slow

DOCS, SHARD_ROWS, UNIT_ROWS = 240, 40, 10


@pytest.fixture(scope="module")
def ray_local():
    """Overrides the 2-CPU local Ray of the S3 fixtures: a cluster of a head (no CPU: the driver's node)
    and three worker nodes of one CPU each."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(3):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    ray.cluster = cluster  # the test removes a node
    yield ray
    ray.shutdown()
    cluster.shutdown()


def test_shards_spread_over_nodes_and_a_removed_node_loses_nothing(ray_local, s3_endpoint, tmp_path):
    ray, cluster = ray_local, ray_local.cluster
    rows = pq.read_table(Path(__file__).resolve().parents[2] / "curate" / "corpus" / "data" / "heldout.parquet",
                         columns=["id", "text", "domain"]).slice(0, DOCS).to_pylist()
    store = f"s3://{BUCKET}/multinode"
    ingest([write_jsonl(tmp_path / "in.jsonl", rows)], store, "c", shard_rows=SHARD_ROWS, progress=False)
    gate = tmp_path / "gate"
    gate.mkdir()
    result: dict = {}

    def score() -> None:
        try:
            result["report"] = run_scorer(store, NodeGatedHeuristics(str(gate)), workers=3, unit_rows=UNIT_ROWS,
                                          ray_address=cluster.address, progress=False)
        except BaseException as exc:  # noqa: BLE001 - shown by the assertion below
            result["error"] = exc

    driver = threading.Thread(target=score)
    driver.start()
    deadline = time.monotonic() + 180
    while len({p.name.split("-")[1] for p in gate.glob("started-*")}) < 3:
        assert time.monotonic() < deadline and driver.is_alive(), f"three nodes never started: {result}"
        time.sleep(0.2)
    started = {p.name.split("-")[1] for p in gate.glob("started-*")}
    workers = {n.node_id: n for n in cluster.worker_nodes}
    assert started == set(workers)  # one shard on each worker node at once
    victim = sorted(started)[0]
    lost_batch = next(p for p in gate.glob(f"started-{victim}-*")).read_text().split()
    # the units every worker is in when the node leaves (issue 22's goal: at most one unit per worker redone)
    in_flight = {i for p in gate.glob("started-*") for i in p.read_text().split()}
    cluster.remove_node(workers[victim], allow_graceful=False)
    (gate / "open").touch()
    driver.join(timeout=300)
    assert not driver.is_alive(), "the run did not finish after the node left"
    assert "error" not in result, result.get("error")
    report = result["report"]
    assert report.ok and report.done == DOCS // SHARD_ROWS, report
    assert len(report.lost_nodes) == 1 and victim[:12] in report.lost_nodes[0]
    assert victim[:12] in reports_markdown([report])  # the score flow's artifact names it

    con = connect(store)
    assert con.sql("SELECT count(*), count(DISTINCT doc_id) FROM heuristics").fetchall()[0] == (DOCS, DOCS)
    scored = Counter(i for p in gate.glob("started-*") for i in p.read_text().split())
    twice = {i for i, n in scored.items() if n > 1}
    assert set(scored) == {r[0] for r in con.sql("SELECT doc_id FROM docs").fetchall()}
    # ray.cluster_utils' nodes share this machine: a worker of the removed node can outlive its raylet for a
    # moment and finish units of its shard while that shard is rescheduled (seen in CI: the lost unit scored
    # once, or later units of that shard twice); on a real node loss the machine is gone. So only the lost
    # node's shard and the units in flight may be scored twice, and the table above holds each document once
    st = Store.open(store)
    shards = []
    for rel in st.list_files(st.shards_dir("c")):
        with st.fs.open_input_file(st.path(rel)) as f:
            shards.append(set(pq.read_table(f, columns=["doc_id"]).column("doc_id").to_pylist()))
    lost_shard = next(ids for ids in shards if lost_batch[0] in ids)
    assert twice <= in_flight | lost_shard and len(twice) <= SHARD_ROWS + UNIT_ROWS * len(workers)
    after = {p.name.split("-")[1] for p in gate.glob("started-*")} - {victim}
    assert after <= set(workers) - {victim}
