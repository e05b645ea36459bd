"""MATES stages end to end on a tiny store: artifacts, the feature table, the CLI, and a live model."""

from __future__ import annotations

import copy
import json
import os

import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from curate import connect
from curate.cli import app
from curate.lm.load import load_causal_lm
from curate.mates import MatesSelector
from curate.mates.select import keep_count
from tests.mates.conftest import INFLUENCE, POOL_SQL, PROXY, REFERENCE_SQL, STAGE

ARTIFACTS = ("probes.parquet", "pool.parquet", "influence_card.json", "selection.parquet", "selection.sql",
             "stage.json", "report.md", "oracle.png", "domains.png")


def _ids(store, rel: str) -> set[str]:
    return set(pq.read_table(store.path(rel), columns=["doc_id"]).column(0).to_pylist())


def test_stage_writes_every_artifact_and_one_feature_row_per_document(stage0, mates_store):
    for name in ARTIFACTS:
        assert mates_store.exists(f"{stage0.dir}/{name}"), name
    assert mates_store.read_bytes(f"{stage0.dir}/oracle.png")[:4] == b"\x89PNG"
    con = connect(mates_store)
    n_docs = con.sql("SELECT count(*) FROM docs").fetchall()[0][0]
    rows, distinct, scored, unknown = con.sql(
        f"SELECT count(*), count(DISTINCT doc_id), count(mates_influence), "
        f"count(*) FILTER (WHERE doc_id NOT IN (SELECT doc_id FROM docs)) FROM {stage0.table}").fetchall()[0]
    assert rows == distinct == n_docs and unknown == 0  # exactly one row per document
    pool, probes = _ids(mates_store, f"{stage0.dir}/pool.parquet"), _ids(mates_store, f"{stage0.dir}/probes.parquet")
    assert scored == len(pool) and not pool & probes  # predictions for the pool only; probes held out
    kept = pq.read_table(mates_store.path(stage0.dir, "selection.parquet"))
    assert kept.num_rows == keep_count(len(pool), 0.2) == len(stage0.doc_ids)
    assert set(stage0.doc_ids) <= pool and kept.column("rank").to_pylist() == list(range(1, kept.num_rows + 1))
    assert {r[0] for r in con.sql(stage0.selection_sql).fetchall()} == set(stage0.doc_ids)
    summary = json.loads(mates_store.read_bytes(f"{stage0.dir}/stage.json"))
    assert summary["data"]["probe_pool_overlap"] == 0 and summary["oracle"]["seconds_per_probe"] > 0
    assert abs(sum(summary["selection"]["selected_domain_shares"].values()) - 1) < 1e-9
    report = mates_store.read_bytes(f"{stage0.dir}/report.md").decode()
    assert "s per probe" in report and f"Spearman {stage0.spearman:.3f}" in report and "oracle.png" in report


def test_cli_runs_the_next_stage_on_a_fresh_pool_and_lists_the_run(stage0, mates_store):
    store = str(mates_store.path())
    result = CliRunner().invoke(app, [
        "mates", "stage", "--store", store, "--proxy", "proxy", "--stage", "1", "--probes", "40",
        "--probe-percent", str(STAGE["probe_percent"]), "--pool-splits", str(STAGE["pool_splits"]),
        "--reference-sql", REFERENCE_SQL, "--pool-sql", POOL_SQL, "--chunk-tokens", str(INFLUENCE["chunk_tokens"]),
        "--max-chunks", str(INFLUENCE["max_chunks"])])
    assert result.exit_code == 0, result.output
    assert "selection.sql" in result.output
    pool0, pool1 = _ids(mates_store, "mates/main/stage-0/pool.parquet"), _ids(mates_store, "mates/main/stage-1/pool.parquet")
    assert pool1 and not pool0 & pool1  # each stage selects from a fresh pool
    con = connect(mates_store)
    assert con.sql("SELECT count(mates_influence) FROM mates_main_s1").fetchall()[0][0] == len(pool1)
    # the shipped top-k query over this stage: 20% of the stage's pool, the lowest predicted loss
    from curate.query import SQL_DIR

    top = con.execute((SQL_DIR / "select_mates_topk.sql").read_text()).fetchall()
    assert len(top) == round(0.2 * len(pool1)) and {r[0] for r in top} <= pool1
    worst_kept = max(con.execute("SELECT mates_influence FROM mates_main_s1 WHERE doc_id IN (SELECT unnest(?))",
                                 [[r[0] for r in top]]).fetchall())[0]
    assert con.execute("SELECT count(*) FROM mates_main_s1 WHERE mates_influence < ?",
                       [worst_kept]).fetchone()[0] < len(top)
    shown = CliRunner().invoke(app, ["mates", "show", "--store", store])
    assert shown.exit_code == 0 and "Spearman" in shown.output
    missing = CliRunner().invoke(app, ["mates", "stage", "--store", store, "--proxy", "nope", "--stage", "0"])
    assert missing.exit_code == 2 and "nope" in missing.output


def test_live_model_selection_leaves_the_job_untouched(mates_store):
    lm = load_causal_lm(mates_store.path("models/proxy"))
    model = lm.model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95))
    ids = torch.tensor([[256, *b"The pretraining job takes a step."]])
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    model(input_ids=ids, labels=ids).loss.backward()  # a pending gradient the probes must not use
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    grads = [p.grad.clone() for p in model.parameters()]
    state = copy.deepcopy(opt.state_dict())

    selector = MatesSelector(mates_store, run="live", probes=24, **STAGE)
    result = selector.select(model, stage=0, optimizer=opt)

    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters()))
    assert all(torch.equal(v, opt.state_dict()["state"][i][k]) for i, s in state["state"].items() for k, v in s.items())
    assert model.training
    assert result.summary["oracle"]["moments"] == "optimizer" and result.summary["proxy"] == "live model"
    assert mates_store.exists("mates/live/stage-0/report.md") and result.table == "mates_live_s0"
    texts = list(selector.texts(result))
    assert len(texts) == len(result.doc_ids) > 0 and all(texts)


def test_mates_scorer_resolves_a_stored_influence_model_by_name(stage0, mates_store):
    import pyarrow as pa

    from scorers.registry import build_scorers

    (scorer,) = build_scorers(mates_store, ["mates"], {"mates": {"model": stage0.model}})
    assert scorer.name == "mates"  # no pool: every document, table "mates"
    out = scorer.score(pa.record_batch({"doc_id": ["a", "b", "c"], "text": ["def f(x):\n    return x", "", None]}))
    values = out.column("mates_influence")
    assert values.null_count == 2 and values[0].is_valid
    with pytest.raises(Exception, match="curate mates stage"):
        build_scorers(mates_store, ["mates"], {"mates": {"model": "never-trained"}})


@pytest.mark.slow
def test_mates_stage_flow_publishes_the_report(stage0, mates_store):
    from flows.mates import mates_stage

    summary = mates_stage(str(mates_store.path()), "proxy", 1, run="flow", probes=30, **STAGE)
    assert summary["stage"] == 1 and mates_store.exists("mates/flow/stage-1/report.md")
    assert summary["influence"]["heldout_probes"] == 30


def test_scheduled_stage_advances_only_when_the_checkpoint_changes(mates_store):
    """``stage=None`` (the curate-mates-stage deployment): same weights -> nothing to do; new weights -> next stage."""
    from curate.lm.train import train_lm
    from flows.deployments import targets
    from flows.mates import mates_stage

    train_lm(mates_store, "sched-proxy", **PROXY)
    store, kw = str(mates_store.path()), {"run": "sched", "probes": 30, **STAGE}
    first = mates_stage(store, "sched-proxy", None, **kw)
    stamp = mates_store.path("mates/sched/stage-0/stage.json")
    before = os.stat(stamp).st_mtime_ns
    again = mates_stage(store, "sched-proxy", None, **kw)
    assert first["stage"] == again["stage"] == 0 and os.stat(stamp).st_mtime_ns == before  # reused, not rerun
    train_lm(mates_store, "sched-proxy", **{**PROXY, "seed": 1}, force=True)  # the job saved a new checkpoint
    nxt = mates_stage(store, "sched-proxy", None, **kw)
    assert nxt["stage"] == 1 and nxt["proxy_sha256"] != first["proxy_sha256"]
    deps = {d.name: d for d in targets(store, [], "c", ["heuristics"], mates_proxy="sched-proxy")}
    assert deps["curate-mates-stage"].parameters == {"store": store, "proxy": "sched-proxy", "run": "scheduled",
                                                     "stage": None}
