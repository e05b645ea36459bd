"""Token counts under a Hugging Face tokenizer: what a mixture's budget counts when it is not bytes.

One feature table, ``tokens``, holds ``token_count`` per document for one tokenizer at a time:
the fingerprint is the tokenizer files' hash (not their path), so another tokenizer makes every
shard stale and the engine recounts it, and the same tokenizer anywhere reuses the counts.
Counts are of the document's text alone (no BOS/EOS: a loader adds one EOS per document).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from curate.scoring import BaseScorer

#: the files that define a tokenizer's output (hashed in this order when present)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def tokenizer_sha256(path: str | Path) -> str:
    """Content hash of a tokenizer directory's defining files."""
    h = hashlib.sha256()
    for name in TOKENIZER_FILES:
        f = Path(path) / name
        if f.is_file():
            h.update(name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def load_fast_tokenizer(path: str | Path) -> Any:
    """The ``tokenizers.Tokenizer`` behind a local HF tokenizer directory (fast: Rust, batched)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), use_fast=True).backend_tokenizer


class TokenCountScorer(BaseScorer):
    """``token_count``: tokens of each document's text under ``tokenizer`` (a local HF tokenizer directory)."""

    name: ClassVar[str] = "tokens"
    version: ClassVar[str] = "1"

    def __init__(self, tokenizer: str) -> None:
        if not (Path(tokenizer) / "tokenizer.json").is_file():
            raise ValueError(f"tokenizer {tokenizer!r} is not a directory with a tokenizer.json")
        super().__init__(tokenizer=str(tokenizer))
        self._sha = tokenizer_sha256(tokenizer)
        self._tok: Any = None

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field("doc_id", pa.string()), pa.field("token_count", pa.int64())])

    def config(self) -> dict[str, Any]:
        return {}  # the path does not change counts; the tokenizer's content (model_hash) does

    def model_hash(self) -> str:
        return self._sha

    def setup(self) -> None:
        self._tok = load_fast_tokenizer(self.settings["tokenizer"])

    def score(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if self._tok is None:
            self.setup()
        texts = batch.column("text").to_pylist()
        enc = self._tok.encode_batch(texts, add_special_tokens=False)
        counts = pa.array([len(e.ids) for e in enc], pa.int64())
        return pa.RecordBatch.from_arrays([batch.column("doc_id"), counts], schema=self.schema)
