"""Spec builders shared by the mixture tests."""

from __future__ import annotations

from pathlib import Path


def spec_dict(**over) -> dict:
    """A valid spec over the test store; ``over`` replaces top-level fields."""
    base = {
        "name": "t",
        "tokens": 200_000,
        "seed": 0,
        "max_epochs": 2,
        "weights": {"web": 0.3, "code": 0.2, "math": 0.1, "encyclopedic": 0.1, "books": 0.1,
                    "forum": 0.1, "docs": 0.05, "multilingual": 0.05},
        "phases": [
            {"name": "main", "fraction": 0.8},
            {"name": "anneal", "fraction": 0.2, "weights": {"math": 0.4, "code": 0.4, "encyclopedic": 0.2}},
        ],
    }
    base.update(over)
    return base


def bpe_tokenizer(texts: list[str], out: Path) -> Path:
    """A real byte-level BPE tokenizer (1,000 ids) trained on ``texts``, saved as HF files in ``out``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=["<eos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>").save_pretrained(str(out))
    return out
