"""Reference LMs trained here: card, files, determinism, reuse, loading, presets and schedules."""

from __future__ import annotations

import math

import pytest

from curate.errors import ConfigError
from curate.lm.load import load_causal_lm, weights_sha256
from curate.lm.tokenizer import (
    BOS_ID,
    EOS_ID,
    VOCAB_SIZE,
    byte_tokenizer,
    is_byte_model,
)
from curate.lm.train import PRESETS, build_model, lr_at, train_lm
from curate.store import Store

SHAPE = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
ARGS = {"config": SHAPE, "tokens": 16_384, "seq_len": 64, "batch_size": 8, "lr": 3e-3, "threads": 1,
        "progress": False}


@pytest.fixture(scope="module")
def store(make_real_store):
    return Store.open(make_real_store(80))


@pytest.fixture(scope="module")
def card(store):
    return train_lm(store, "a", **ARGS)


def test_card_and_files(store, card):
    d = store.path("models/a")
    for f in ("config.json", "model.safetensors", "tokenizer.json", "card.json", "curate_tokenizer.json"):
        assert store.exists(f"models/a/{f}"), f
    assert card.steps == 16_384 // (64 * 8) and card.tokens_seen == card.steps * 64 * 8
    assert 10_000 < card.params < 30_000
    # trained a little: better than uniform over the vocabulary, and a finite bits-per-byte
    assert 0 < card.heldout_loss < math.log(VOCAB_SIZE) and 0 < card.heldout_bits_per_byte < 8.5
    assert card.heldout_docs > 0 and card.training["heldout"].startswith("hashed")
    assert card.weights_sha256 == weights_sha256(d) and card.tokenizer == "bytes"
    assert store.read_json("models/a/card.json")["heldout_loss"] == card.heldout_loss


def test_same_seed_same_weights_and_loss(store, card):
    again = train_lm(store, "b", **ARGS)
    assert again.weights_sha256 == card.weights_sha256 and again.heldout_loss == card.heldout_loss
    other = train_lm(store, "c", **{**ARGS, "seed": 1})
    assert other.weights_sha256 != card.weights_sha256


def test_same_request_is_reused_unless_forced(store, card):
    assert train_lm(store, "a", **ARGS).created == card.created
    assert train_lm(store, "a", **ARGS, force=True).weights_sha256 == card.weights_sha256


def test_loads_as_a_hugging_face_checkpoint(store, card):
    from transformers import AutoTokenizer

    d = store.path("models/a")
    assert is_byte_model(d)
    tok = AutoTokenizer.from_pretrained(d, local_files_only=True)
    text = "naïve café\n\tend"
    assert tok(text, add_special_tokens=False)["input_ids"] == list(text.encode())
    assert tok.decode(list(text.encode())) == text
    assert (tok.bos_token_id, tok.eos_token_id) == (BOS_ID, EOS_ID)
    lm = load_causal_lm(d)
    assert lm.encoder.is_bytes and lm.context == 64 and not lm.model.training
    assert next(load_causal_lm(d, dtype="bfloat16").model.parameters()).dtype.is_floating_point
    with pytest.raises(ConfigError):
        load_causal_lm(d, dtype="float16")


def test_held_out_corpus_and_bad_requests(store):
    with pytest.raises(ConfigError, match="preset"):
        train_lm(store, "x", config="huge")
    with pytest.raises(ConfigError, match="schedule"):
        train_lm(store, "x", config=SHAPE, schedule="linear")
    with pytest.raises(ConfigError, match="no text"):
        train_lm(store, "x", **{**ARGS, "tokens": 512}, eval_sql="SELECT text FROM docs WHERE false")


def test_presets_span_1m_to_30m_parameters():
    sizes = {}
    for name, p in PRESETS.items():
        model = build_model(p["model"], p["train"]["seq_len"], 0)
        sizes[name] = sum(x.numel() for x in model.parameters())
    assert 0.05e6 < sizes["micro"] < 0.2e6 and 0.7e6 < sizes["tiny"] < 1.3e6 and 8e6 < sizes["small"] < 12e6 and 20e6 < sizes["medium"] < 30e6


def test_schedules():
    steps, lr = 100, 1.0
    cos = [lr_at(s, steps, lr, 10, "cosine") for s in range(steps)]
    assert cos[0] == pytest.approx(0.1) and cos[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(cos[10:], cos[11:])) and cos[-1] == pytest.approx(0.1, abs=0.01)
    wsd = [lr_at(s, steps, lr, 10, "wsd") for s in range(steps)]
    assert wsd[10:80] == [1.0] * 70 and wsd[-1] == pytest.approx(0.1, abs=0.05)
    const = [lr_at(s, steps, lr, 10, "constant") for s in range(steps)]
    assert const[:10] == cos[:10] and const[10:] == [1.0] * 90
    # a constant run's first steps do not depend on its length (a longer run starts like a shorter one)
    assert [lr_at(s, 50, lr, 10, "constant") for s in range(50)] == const[:50]


def test_curve_during_training_leaves_the_weights_alone(store, card):
    per_step = ARGS["seq_len"] * ARGS["batch_size"]
    curved = train_lm(store, "curved", **ARGS, eval_at=[per_step, 3 * per_step, ARGS["tokens"], 10**9])
    assert curved.weights_sha256 == card.weights_sha256 and curved.heldout_loss == card.heldout_loss
    assert [p["tokens"] for p in curved.curve] == [per_step, 3 * per_step, ARGS["tokens"]]
    assert curved.curve[-1]["loss"] == curved.heldout_loss and curved.curve[0]["loss"] > curved.heldout_loss
    assert curved.training["eval_at"][-1] == 10**9 and "eval_at" not in card.training and card.curve == []


def test_a_data_source_can_watch_the_live_model(store):
    import numpy as np

    seen = []

    def batches(model, optimizer):
        rng = np.random.default_rng(0)
        while True:
            seen.append(next(model.parameters()).detach().clone())  # the weights before each step
            yield rng.integers(0, 256, size=(ARGS["batch_size"], ARGS["seq_len"]))

    steps = ARGS["tokens"] // (ARGS["seq_len"] * ARGS["batch_size"])
    out = train_lm(store, "fed", **ARGS, batches=batches, schedule="constant")
    assert out.steps == steps and len(seen) == steps and not seen[0].equal(seen[-1])
    assert out.training["train_sql"] is None and "batches" in out.training["data"]
    again = train_lm(store, "fed", **ARGS, batches=batches, schedule="constant")  # never reused: data unknown
    assert again.created >= out.created and len(seen) == 2 * steps


def test_byte_tokenizer_vocabulary():
    tok = byte_tokenizer()
    assert len(tok) == VOCAB_SIZE
    assert tok("\x00\xff", add_special_tokens=False)["input_ids"] == list("\x00\xff".encode())



def test_a_byte_model_reads_a_document_after_the_eos_it_was_trained_on_not_the_untrained_bos(store, card):
    """Training joins documents with <eos> and never shows <bos>, so <bos>'s input embedding stays at its
    random initialisation; scoring after it made held-out losses depend on the seed (the experiment's random
    seeds spread 0.031-0.039 bits/byte, 0.016-0.020 after <eos>). A score is the NLL after <eos>."""
    import torch

    from curate.lm.score import score_texts

    lm = load_causal_lm(store.path("models/a"), dtype="float32")
    assert lm.encoder.bos_id == EOS_ID != BOS_ID
    with torch.no_grad():  # a <bos> row unlike any trained one, so reading it would show
        lm.model.get_input_embeddings().weight[BOS_ID] *= 20.0
    text = "The river rose in the spring."
    got = score_texts(lm, [text], max_tokens=64, window=64, stride=32, batch_tokens=4096).nll_sum[0]

    def nll_after(start: int) -> float:
        ids = torch.tensor([[start, *text.encode()]])
        with torch.no_grad():
            return float(lm.model(input_ids=ids, labels=ids).loss) * len(text.encode())

    assert got == pytest.approx(nll_after(EOS_ID), rel=1e-6)
    assert got != pytest.approx(nll_after(BOS_ID), rel=1e-2)
