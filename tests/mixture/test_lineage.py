"""Lineage: a step's documents are what MixtureDataset yields at that step; a document's uses, epochs included."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from curate.cli import app
from curate.errors import ConfigError
from curate.lineage import at_step, first_step_of_phase, step_windows, uses_of
from curate.mixture import build_mixture, load_spec
from curate.mixture.loader import EOS, MixtureDataset
from curate.query import connect
from tests.mixture._specs import spec_dict

SEQ, BATCH, WORLD, WORKERS = 32, 3, 2, 2


@pytest.fixture(scope="module")
def built(mix_store):
    return build_mixture(mix_store, load_spec(spec_dict(name="lin", tokens=60_000)), report=False).name


def window_from_lineage(rows: list[dict], texts: dict[str, bytes]) -> np.ndarray:
    parts = []
    for r in sorted(rows, key=lambda r: r["token_from"]):
        doc = np.frombuffer(texts[r["doc_id"]], dtype=np.uint8).astype(np.int64)
        doc = np.append(doc, EOS)
        parts.append(doc[r["doc_from"]:r["doc_to"]])
        assert r["token_to"] - r["token_from"] == r["doc_to"] - r["doc_from"]
    return np.concatenate(parts)


@pytest.mark.parametrize("step", [0, 5])
def test_a_steps_documents_are_what_the_loader_yields_on_every_rank(mix_store, built, step):
    lin = at_step(mix_store, built, step, batch_size=BATCH, seq_len=SEQ, world_size=WORLD,
                  num_workers=WORKERS).to_pylist()
    texts = {d: t.encode() for d, t in connect(mix_store).sql(
        "SELECT doc_id, text FROM docs").fetchall()}
    for rank in range(WORLD):
        ds = MixtureDataset(mix_store, built, seq_len=SEQ, rank=rank, world_size=WORLD)
        loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, num_workers=WORKERS, multiprocessing_context="spawn")
        batch = next(b for j, b in enumerate(loader) if j == step)
        windows = sorted({r["window"] for r in lin if r["rank"] == rank})
        assert len(windows) == BATCH
        for w, yielded in zip(windows, batch):
            rebuilt = window_from_lineage([r for r in lin if r["rank"] == rank and r["window"] == w], texts)
            assert np.array_equal(rebuilt, yielded.numpy())
    assert all(r["rule"].startswith("select: ") for r in lin) and {r["phase"] for r in lin} <= {"main", "anneal"}


def test_step_windows_partition_the_stream_without_overlap():
    seen = [w for s in range(6) for _, _, w in step_windows(s, BATCH, world_size=WORLD, num_workers=WORKERS)]
    assert sorted(seen) == list(range(6 * BATCH * WORLD))


def test_a_document_used_in_two_epochs_shows_both_uses(mix_store, domain_tokens):
    enc = domain_tokens["encyclopedic"]
    name = build_mixture(mix_store, load_spec(spec_dict(
        name="rep", tokens=int(enc * 1.5), max_epochs=2, weights={"encyclopedic": 1.0},
        phases=[{"name": "main", "fraction": 1.0}])), report=False).name
    doc = connect(mix_store).sql(f"SELECT doc_id FROM read_parquet('{mix_store.path('mixtures', name, 'plan.parquet')}') "
                                 "WHERE epoch = 2 LIMIT 1").fetchall()[0][0]
    u = uses_of(mix_store, doc, seq_len=SEQ, global_batch=BATCH)
    mine = [x for x in u["uses"] if x["mixture"] == name]
    assert sorted(x["epoch"] for x in mine) == [1, 2]
    assert all(x["steps"][0] <= x["steps"][1] for x in mine) and u["features"]["doc_id"] == doc


def test_refusals_and_the_cli(mix_store, built):
    with pytest.raises(ConfigError, match="has .* windows"):
        at_step(mix_store, built, 10**6, batch_size=BATCH, seq_len=SEQ)
    with pytest.raises(ConfigError, match="no document 'nope'"):
        uses_of(mix_store, "nope")
    runner = CliRunner()
    res = runner.invoke(app, ["lineage", "--store", mix_store.uri, "--mixture", built, "--step", "3",
                              "--global-batch", "4", "--seq-len", str(SEQ)])
    assert res.exit_code == 0, res.output
    assert "step 3" in res.output and "rule: select:" in " ".join(res.output.split())
    res = runner.invoke(app, ["lineage", "--store", mix_store.uri, "--step", "3"])
    assert res.exit_code == 2 and "give --mixture and --step" in res.output


def _rewrite_plan(store, name: str, change) -> None:
    path = store.path("mixtures", name, "plan.parquet")
    pq.write_table(change(pq.read_table(path)), path, row_group_size=50)


@pytest.mark.parametrize("change", [
    pytest.param(lambda t: t.drop_columns(["stream_start", "doc_file", "doc_row"]), id="built-before-offsets"),
    pytest.param(lambda t: t.set_column(t.schema.get_field_index("doc_row"), "doc_row",
                                        pc.add(t.column("doc_row"), 1)), id="shards-rewritten-since"),
])
def test_old_or_stale_plans_answer_the_same(mix_store, built, change):
    """A plan without the stream offsets and shard rows (an older build) is answered from its token counts;
    rows that no longer hold the document are looked up by id: the same answers either way."""
    other = build_mixture(mix_store, load_spec(spec_dict(name="lin-old", tokens=60_000)), report=False).name
    _rewrite_plan(mix_store, other, change)
    for step in (0, 7):
        kw = {"batch_size": BATCH, "seq_len": SEQ, "world_size": WORLD, "num_workers": WORKERS}
        assert at_step(mix_store, other, step, **kw).to_pylist() == at_step(mix_store, built, step, **kw).to_pylist()
    assert first_step_of_phase(mix_store, other, "anneal", batch_size=BATCH, seq_len=SEQ) == \
        first_step_of_phase(mix_store, built, "anneal", batch_size=BATCH, seq_len=SEQ)
    doc = at_step(mix_store, built, 3, batch_size=BATCH, seq_len=SEQ).column("doc_id")[0].as_py()
    uses = {u["mixture"]: {k: v for k, v in u.items() if k != "mixture"} for u in uses_of(mix_store, doc)["uses"]}
    assert uses[other] == uses[built]
