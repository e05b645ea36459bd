"""EL2N and GraNd on real text with proxy LMs trained here: formulas checked independently, seeds, engine."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from curate import connect
from curate.errors import ConfigError
from curate.execute import run_scorer
from curate.lm.load import load_causal_lm
from curate.store import Store
from scorers.registry import build_scorers
from scorers.el2n import EL2NScorer
from scorers.grand import GraNdScorer

SHAPE = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
PROXY = {"config": SHAPE, "tokens": 40_000, "seq_len": 128, "batch_size": 4, "lr": 3e-3, "threads": 1,
         "progress": False}


@pytest.fixture(scope="module")
def proxy_store(make_real_store):
    from curate.lm.train import train_lm

    store = Store.open(make_real_store(80))
    for seed in (0, 1):
        train_lm(store, f"proxy-s{seed}", seed=seed, **PROXY)
    return store


@pytest.fixture(scope="module")
def paths(proxy_store):
    return [proxy_store.path("models/proxy-s0"), proxy_store.path("models/proxy-s1")]


def _batch(texts: list[str]) -> pa.RecordBatch:
    return pa.record_batch({"doc_id": [f"d{i}" for i in range(len(texts))], "text": texts})


def _texts(real_docs, n=16, chars=400) -> list[str]:
    return [d["text"][:chars] for d in real_docs[:: max(1, len(real_docs) // n)]][:n]


def _ids(lm, text: str) -> torch.Tensor:
    return torch.tensor([[lm.encoder.bos_id, *text.encode("utf-8")]])


def test_el2n_equals_the_definition_and_averages_seeds(paths, real_docs):
    texts = _texts(real_docs, 4, 120)  # one window: the reference sees the same context
    out = EL2NScorer(paths).score(_batch(texts)).to_pydict()
    per_seed = []
    for p in paths:
        lm = load_causal_lm(p)
        row = []
        for text in texts:
            ids = _ids(lm, text)
            with torch.inference_mode():
                probs = torch.softmax(lm.model(input_ids=ids).logits[0, :-1].double(), -1)
            err = probs - torch.nn.functional.one_hot(ids[0, 1:], probs.shape[-1]).double()
            row.append(err.norm(dim=-1).mean().item())
        per_seed.append(row)
    expect = np.mean(per_seed, axis=0)
    assert np.allclose(out["el2n"], expect, atol=1e-5)
    assert np.allclose(out["el2n_std"], np.std(per_seed, axis=0), atol=1e-5)
    assert out["n_tokens"] == [len(t.encode()) for t in texts]


def test_el2n_is_bounded_non_constant_and_reproducible(paths, real_docs):
    texts = _texts(real_docs)
    a = EL2NScorer(paths).score(_batch(texts))
    b = EL2NScorer(paths).score(_batch(texts))
    assert a.equals(b)
    v = a.column("el2n").to_numpy()
    assert np.isfinite(v).all() and (v > 0).all() and (v <= math.sqrt(2)).all()
    assert v.std() > 1e-3  # documents differ
    assert (a.column("el2n_std").to_numpy() > 0).any()  # independently seeded proxies disagree somewhere


def test_grand_exact_equals_per_sample_gradients_from_torch_func(paths, real_docs):
    from torch.func import functional_call, grad

    # different lengths in one batch: the batched backward must keep documents apart
    texts = [t[:n] for t, n in zip(_texts(real_docs, 4, 120), (120, 75, 31, 2))]
    out = GraNdScorer(paths[:1]).score(_batch(texts)).column("grand").to_pylist()
    lm = load_causal_lm(paths[0])
    params = {k: v.detach() for k, v in lm.model.named_parameters()}

    def loss(p, ids):
        return functional_call(lm.model, p, (ids,), {"labels": ids}).loss

    for text, got in zip(texts, out):
        g = grad(loss)(params, _ids(lm, text))
        expect = math.sqrt(sum(float(v.double().square().sum()) for v in g.values()))
        assert got == pytest.approx(expect, rel=1e-4)


def test_grand_batched_exact_equals_one_backward_per_document(paths, real_docs):
    from curate.lm.grad_norms import supported
    from scorers.grand import _exact_norms

    lm = load_causal_lm(paths[1])
    assert supported(lm.model) and lm.model.config.tie_word_embeddings
    seqs = [np.concatenate(([lm.encoder.bos_id], np.frombuffer(t.encode(), np.uint8).astype(np.int64)))
            for t in _texts(real_docs, 10, 100)]
    batched = _exact_norms(lm.model, seqs, lm.encoder.pad_id, 4096)
    loop = []
    for seq in seqs:
        lm.model.zero_grad()
        x = torch.from_numpy(seq[None])
        lm.model(input_ids=x, labels=x).loss.backward()
        loop.append(math.sqrt(sum(float(p.grad.double().square().sum()) for p in lm.model.parameters())))
    assert np.allclose(batched, loop, rtol=1e-4)


def test_grand_last_layer_is_the_output_heads_gradient(paths, real_docs):
    texts = _texts(real_docs, 3, 100)
    scorer = GraNdScorer(paths[:1], method="last_layer")
    out = scorer.score(_batch(texts)).column("grand").to_pylist()
    lm = load_causal_lm(paths[0])
    for text, got in zip(texts, out):
        ids = _ids(lm, text)
        with torch.no_grad():
            hidden = lm.model.base_model(input_ids=ids).last_hidden_state[0, :-1]
        w = lm.model.get_output_embeddings().weight.detach().clone().requires_grad_(True)
        torch.nn.functional.cross_entropy(hidden @ w.T, ids[0, 1:]).backward()
        assert got == pytest.approx(float(w.grad.norm()), rel=1e-4)
    assert scorer.schema.field("grand").metadata[b"method"] == b"last_layer"


def test_grand_is_finite_non_constant_reproducible_and_capped(paths, real_docs):
    texts = _texts(real_docs, 12, 2000) + [""]
    a = GraNdScorer(paths, max_tokens=64).score(_batch(texts))
    assert a.equals(GraNdScorer(paths, max_tokens=64).score(_batch(texts)))
    v = a.column("grand").to_numpy(zero_copy_only=False)[:-1]
    assert np.isfinite(v).all() and (v > 0).all() and v.std() > 1e-4
    assert a.column("grand").to_pylist()[-1] is None
    n = a.column("n_tokens").to_pylist()
    assert max(n) == 64 and n[-1] == 0


def test_settings_are_checked(paths):
    with pytest.raises(ConfigError, match="method"):
        GraNdScorer(paths, method="approx")
    with pytest.raises(ConfigError, match="no causal LM"):
        EL2NScorer(["/nonexistent/proxy"])
    assert GraNdScorer(paths, max_tokens=10_000).settings["max_tokens"] == 128  # the proxies' context
    assert GraNdScorer(paths).fingerprint() != GraNdScorer(paths, method="last_layer").fingerprint()


def test_engine_resolves_a_seed_family_and_stores_method_metadata(proxy_store):
    el2n, grand = build_scorers(proxy_store, ["el2n", "grand"],
                                {"el2n": {"model": "proxy", "max_tokens": 128}, "grand": {"max_tokens": 32}})
    assert [p.name for p in el2n.model_paths] == ["proxy-s0", "proxy-s1"] == [p.name for p in grand.model_paths]
    for scorer in (el2n, grand):
        assert run_scorer(proxy_store, scorer, workers=0, progress=False).ok
    con = connect(proxy_store)
    n, distinct, ok = con.execute(
        "SELECT count(*), count(DISTINCT doc_id), bool_and(el2n > 0 AND grand > 0) FROM doc_features "
        "WHERE n_tokens > 0").fetchone()
    assert n == distinct == 320 and ok
    (shard,) = proxy_store.list_files("features/grand")[:1]
    field = pq.read_schema(proxy_store.path(shard)).field("grand")
    assert field.metadata[b"method"] == b"exact"
    with pytest.raises(ConfigError, match="train-lm"):
        build_scorers(proxy_store, ["el2n"], {"el2n": {"model": "missing"}})


def test_cli_trains_a_seed_family_and_scores_with_model(make_real_store):
    from typer.testing import CliRunner

    from curate.cli import app

    store = str(make_real_store(80))
    runner = CliRunner()
    r = runner.invoke(app, ["train-lm", "--store", store, "--name", "px", "--seeds", "2", "--tokens", "8192",
                            "--seq-len", "64", "--batch-size", "4", "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert "px-s0" in r.output and "px-s1" in r.output
    cards = [Store.open(store).read_json(f"models/px-s{i}/card.json") for i in (0, 1)]
    assert [c["seed"] for c in cards] == [0, 1] and cards[0]["weights_sha256"] != cards[1]["weights_sha256"]
    # --model names a family: perplexity takes one model, so that is refused before any work
    with pytest.raises(ConfigError, match="perplexity scores with one model"):
        build_scorers(Store.open(store), ["el2n", "perplexity"], {"el2n": {"model": "px"}, "perplexity": {"model": "px"}})
    r = runner.invoke(app, ["score", "--store", store, "--scorers", "el2n,grand,perplexity", "--model", "px",
                            "--workers", "0", "--set", "grand.max_tokens=16", "--set", "el2n.max_tokens=64",
                            "--set", "perplexity.model=px-s1", "--set", "perplexity.max_tokens=64"])
    assert r.exit_code == 0, r.output[-3000:]
    n, ok = connect(store).execute("SELECT count(*), bool_and(el2n > 0 AND grand > 0 AND nll > 0) "
                                   "FROM doc_features").fetchone()
    assert n == 320 and ok


def test_shipped_el2n_and_lm_sql_run_as_they_are(proxy_store):
    from curate.query import SQL_DIR

    el2n, grand = build_scorers(proxy_store, ["el2n", "grand"], {"el2n": {"max_tokens": 128}, "grand": {"max_tokens": 32}})
    ppl = build_scorers(proxy_store, ["perplexity"], {"perplexity": {"model": "proxy-s0", "max_tokens": 128}})[0]
    for scorer in (el2n, grand, ppl):  # up to date after the engine test: nothing to do then
        assert run_scorer(proxy_store, scorer, workers=0, progress=False).ok
    con = connect(proxy_store)
    band_body = (SQL_DIR / "perplexity_band.sql").read_text().split("ranked AS (", 1)[1]
    kept = {}
    for kind in ("hard", "easy"):
        text = (SQL_DIR / f"el2n_keep_{kind}.sql").read_text()
        assert text.split("ranked AS (", 1)[1] == band_body  # the shared band logic has not drifted
        kept[kind] = con.sql(text).fetchall()
    assert len(kept["hard"]) == len(kept["easy"]) == 160  # 8 domains x floor(0.5 x 40)
    assert not {r[0] for r in kept["hard"]} & {r[0] for r in kept["easy"]}
    for domain in {r[1] for r in kept["hard"]}:
        assert min(r[3] for r in kept["hard"] if r[1] == domain) >= max(r[3] for r in kept["easy"] if r[1] == domain)
    rows = con.sql((SQL_DIR / "lm_scores_by_domain.sql").read_text()).fetchall()
    assert len(rows) == 8 and sum(r[1] for r in rows) == 320
    assert all(-1 <= r[5] <= 1 and -1 <= r[6] <= 1 for r in rows)
