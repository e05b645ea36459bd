"""Reference language models: train tiny ones on a store, load any local checkpoint, score text.

- :func:`train_lm` (``curate train-lm``): a byte-level Llama trained offline on CPU, saved in
  Hugging Face format under ``models/<name>/`` with ``card.json``.
- :func:`load_causal_lm`: a curate model or any local HF checkpoint directory.
- :func:`score_texts`: summed NLL per text with windows and length-bucketed batches — the core
  of the ``perplexity`` scorer, reusable by EL2N/GraNd through :mod:`curate.lm.nll`.

Torch and transformers load only when these are called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_LAZY = {
    "train_lm": ("curate.lm.train", "train_lm"),
    "LMCard": ("curate.lm.train", "LMCard"),
    "PRESETS": ("curate.lm.train", "PRESETS"),
    "load_causal_lm": ("curate.lm.load", "load_causal_lm"),
    "LoadedLM": ("curate.lm.load", "LoadedLM"),
    "score_texts": ("curate.lm.score", "score_texts"),
    "Encoder": ("curate.lm.tokenizer", "Encoder"),
    "byte_tokenizer": ("curate.lm.tokenizer", "byte_tokenizer"),
}

if TYPE_CHECKING:  # pragma: no cover
    from curate.lm.load import LoadedLM, load_causal_lm
    from curate.lm.score import score_texts
    from curate.lm.tokenizer import Encoder, byte_tokenizer
    from curate.lm.train import PRESETS, LMCard, train_lm


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'curate.lm' has no attribute {name!r}")


__all__ = list(_LAZY)
