"""Perplexity scorer on real text with a tiny LM trained here: exact loss, batch invariance, order, engine."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
import torch

from curate import connect
from curate.errors import ConfigError
from curate.execute import run_scorer
from curate.lm.load import load_causal_lm
from curate.lm.windows import windows
from curate.store import Store
from scorers.registry import build_scorers
from scorers.perplexity import PerplexityScorer

#: small enough to train in seconds on 2 cores, trained long enough for the ordering test
TEST_SHAPE = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 192}
MASH = "qwpoeiru zxmcnv alskdjfh qpwoeiruty zmxncbv lkajsdf poiuqwer mnbvcxz " * 6
# Repetitive code whose bytes are predictable from local statistics (indentation runs): a tiny LM
# trained for seconds has not learned in-context copying yet, so "x = 1\n" * 200 still scores near
# its unigram cost (~5-6 bits/byte) while this scores ~2.3 against prose's ~3.6-4.1.
CODE = "        pass\n" * 100
TRAIN_TOKENS = 800_000  # below ~600k the code/prose margin gets thin


@pytest.fixture(scope="module")
def lm_store(make_real_store):
    from curate.lm.train import train_lm

    store = make_real_store(60)
    train_lm(store, "tiny-lm", config=TEST_SHAPE, tokens=TRAIN_TOKENS, seq_len=128, batch_size=4, lr=1e-2,
             threads=1, progress=False)
    return Store.open(store)


@pytest.fixture(scope="module")
def scorer(lm_store):
    """fp32 pinned: these tests check exact agreement with the model's own float32 loss."""
    s = PerplexityScorer(lm_store.path("models/tiny-lm"), dtype="float32")
    s.setup()
    return s


def _batch(texts: list[str]) -> pa.RecordBatch:
    return pa.record_batch({"doc_id": [f"d{i}" for i in range(len(texts))], "text": texts})


def _prose(real_docs, n=12) -> list[str]:
    return [d["text"][:600] for d in real_docs if d["domain"] in ("books", "encyclopedic")][:n]


def test_nll_equals_the_models_own_loss(scorer, real_docs):
    lm = load_causal_lm(scorer.model_path)
    texts = [t[:100] for t in _prose(real_docs, 4)] + ["héllo wörld — ünïcode"]
    out = scorer.score(_batch(texts)).to_pydict()
    for i, text in enumerate(texts):
        ids = torch.tensor([[lm.encoder.bos_id, *text.encode("utf-8")]])
        with torch.inference_mode():
            loss = lm.model(input_ids=ids, labels=ids).loss.item()
        assert abs(out["nll"][i] - loss) < 1e-4
        assert out["n_tokens"][i] == len(text.encode("utf-8")) and not out["truncated"][i]
        assert out["ppl"][i] == pytest.approx(math.exp(loss), rel=1e-4)
        # bytes model: bits per byte = mean nats per token / ln 2
        assert out["bits_per_byte"][i] == pytest.approx(loss / math.log(2), rel=1e-4)


def test_keyboard_mash_above_prose_above_repetitive_code(scorer, real_docs):
    prose = _prose(real_docs)
    bpb = scorer.score(_batch([MASH, CODE, *prose])).column("bits_per_byte").to_numpy()
    mash, code, prose_bpb = bpb[0], bpb[1], bpb[2:]
    assert mash > prose_bpb.max()
    assert code < prose_bpb.min()


def test_scores_do_not_depend_on_the_batch(scorer, real_docs):
    texts = [d["text"] for d in real_docs[::16]] + [MASH, CODE, "", "a"]  # long, short, empty, one byte
    together = scorer.score(_batch(texts))
    for i, text in enumerate(texts):
        alone = scorer.score(_batch([text]))
        for col in ("bits_per_byte", "nll"):
            a, b = alone.column(col)[0].as_py(), together.column(col)[i].as_py()
            assert (a is None and b is None) or abs(a - b) <= 1e-5 * max(1.0, abs(a)), (col, i)
        assert alone.column("n_tokens")[0] == together.column("n_tokens")[i]


def test_auto_dtype_is_bf16_only_on_native_bf16_cpus_and_close_to_fp32(lm_store, scorer, real_docs):
    from curate.lm.load import cpu_has_bf16

    auto = PerplexityScorer(lm_store.path("models/tiny-lm"))
    assert auto.settings["dtype"] == ("bfloat16" if cpu_has_bf16() else "float32")
    texts = [d["text"] for d in real_docs[::8]]
    fast = auto.score(_batch(texts)).column("bits_per_byte").to_numpy()
    exact = scorer.score(_batch(texts)).column("bits_per_byte").to_numpy()
    assert np.abs(fast / exact - 1).max() < 0.01  # measured: within 0.05% on 256 real documents
    assert (np.argsort(np.argsort(fast)) == np.argsort(np.argsort(exact))).mean() > 0.9  # ranks kept


def test_same_model_same_scores(lm_store, real_docs):
    texts = [d["text"] for d in real_docs[::10]]
    a = PerplexityScorer(lm_store.path("models/tiny-lm")).score(_batch(texts))
    b = PerplexityScorer(lm_store.path("models/tiny-lm")).score(_batch(texts))
    assert a.equals(b)


def test_features_a_byte_model_scored_after_bos_are_stale(lm_store):
    """Byte models read documents after <eos> since the fix of the untrained <bos>: their fingerprint says so,
    so features scored before it are scored again; the config is otherwise as it was."""
    from curate.scoring import scorer_fingerprint

    scorer = PerplexityScorer(lm_store.path("models/tiny-lm"))
    config = scorer.config()
    assert config.pop("byte_doc_start") == "eos" and config["model"] == "tiny-lm"
    old = type("BeforeTheFix", (PerplexityScorer,), {"scoring": lambda self: {}})(lm_store.path("models/tiny-lm"))
    assert scorer_fingerprint(old) != scorer_fingerprint(scorer)


def test_long_documents_are_windowed_and_capped(scorer, real_docs):
    long = max((d["text"] for d in real_docs), key=len)
    assert len(long.encode()) > 2048
    out = scorer.score(_batch([long, long[:300]])).to_pydict()
    assert out["truncated"] == [True, False]
    assert out["n_tokens"][0] == scorer.settings["max_tokens"]
    assert out["n_tokens"][1] == len(long[:300].encode())
    empty = scorer.score(_batch([""])).to_pydict()
    assert empty["n_tokens"] == [0] and empty["nll"] == [None] and empty["bits_per_byte"] == [None]


@pytest.mark.parametrize("n,window,stride", [(1, 8, 4), (2, 8, 4), (8, 8, 4), (9, 8, 4), (50, 8, 3), (50, 16, 15)])
def test_windows_score_every_token_once_with_context(n, window, stride):
    seen = []
    for start, end, first in windows(n, window, stride):
        assert end - start <= window and start < first <= end
        assert first - start >= min(window - stride, first) or start == 0
        seen.extend(range(first, end))
    assert seen == list(range(1, n))


def test_settings_are_checked(lm_store):
    path = lm_store.path("models/tiny-lm")
    with pytest.raises(ConfigError, match="context"):
        PerplexityScorer(path, window=4096)
    with pytest.raises(ConfigError, match="no causal LM"):
        PerplexityScorer(lm_store.path("models/nope"))
    assert PerplexityScorer(path).settings["window"] == 128  # the model's trained context


def test_engine_run_and_store_model_resolution(lm_store):
    (scorer,) = build_scorers(lm_store, ["perplexity"], {"perplexity": {"model": "tiny-lm", "max_tokens": 256}})
    assert scorer.model_path == PerplexityScorer(lm_store.path("models/tiny-lm")).model_path
    report = run_scorer(lm_store, scorer, workers=0, progress=False)
    assert report.ok and report.rows == 320
    again = run_scorer(lm_store, scorer, workers=0, progress=False)
    assert again.done == 0 and again.skipped == report.done
    n, ok = connect(lm_store).execute(
        "SELECT count(*), bool_and(nll > 0 AND ppl = exp(nll)::FLOAT OR abs(ppl - exp(nll)) < 1e-3 * ppl) "
        "FROM doc_features WHERE n_tokens > 0").fetchone()
    assert n == 320 and ok
    with pytest.raises(ConfigError, match="train-lm"):
        build_scorers(lm_store, ["perplexity"], {"perplexity": {"model": "missing"}})
