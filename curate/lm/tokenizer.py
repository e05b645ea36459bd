"""Tokenizers for reference LMs: curate's byte-level tokenizer, and one encoder API over any tokenizer.

The byte tokenizer needs no training: token id = UTF-8 byte value (0-255), then
``<bos>`` = 256, ``<eos>`` = 257, ``<pad>`` = 258. curate's byte LMs train on documents
joined by ``<eos>`` and never see ``<bos>``, so a document is scored after ``<eos>``
(:data:`BYTE_DOC_START`), as in training: ``<bos>``'s embedding is its random
initialisation, and scoring after it made losses depend on the seed. It is saved as a real
``PreTrainedTokenizerFast`` (``tokenizer.json``) so ``AutoTokenizer`` and any
Hugging Face tool can load a curate model; curate itself encodes byte models
with numpy (no per-token Python), which is what makes scoring tiny models fast.

:class:`Encoder` is what scorers and training call: a batch of texts in,
token ids (optionally capped) plus the UTF-8 bytes each id sequence covers out,
for either kind of tokenizer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BYTE_VOCAB = 256
BOS_ID, EOS_ID, PAD_ID = 256, 257, 258
VOCAB_SIZE = 259
BOS, EOS, PAD = "<bos>", "<eos>", "<pad>"
#: written next to a byte model; its presence selects the numpy fast path
MARKER_FILE = "curate_tokenizer.json"
#: the token a byte model reads a document after: the separator it was trained on, not the untrained <bos>
#: (an untrained <bos> at position 0, which every later position attends to, moved the experiment's
#: held-out bits per byte by up to 0.1 between seeds of one method)
BYTE_DOC_START = EOS_ID
#: in the fingerprint of anything a byte LM scores, so scores made after <bos> are made again
BYTE_SCORING = {"byte_doc_start": "eos"}


def byte_tokenizer() -> Any:
    """The byte-level tokenizer as a ``transformers.PreTrainedTokenizerFast`` (ids = byte values)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import PreTrainedTokenizerFast

    # ByteLevel maps every byte to one printable character; a BPE with no merges over
    # exactly those 256 characters is then "one token per byte", numbered by byte value.
    alphabet = ByteLevel.alphabet()
    byte_to_char = _bytes_to_unicode()
    vocab = {byte_to_char[b]: b for b in range(BYTE_VOCAB)}
    assert set(vocab) == set(alphabet)
    vocab.update({BOS: BOS_ID, EOS: EOS_ID, PAD: PAD_ID})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, model_max_length=1 << 30,
    )


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (what ``ByteLevel`` uses internally)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def save_byte_tokenizer(directory: str | Path) -> None:
    """Write the byte tokenizer (HF files + curate's marker) into a model directory."""
    directory = Path(directory)
    byte_tokenizer().save_pretrained(str(directory))
    (directory / MARKER_FILE).write_text(json.dumps({"kind": "bytes", "bos": BOS_ID, "eos": EOS_ID, "pad": PAD_ID}) + "\n")


def is_byte_model(directory: str | Path) -> bool:
    return (Path(directory) / MARKER_FILE).is_file()


def scoring_of(directories: list[str | Path]) -> dict[str, str]:
    """What to add to the fingerprint of scores these models make: :data:`BYTE_SCORING` when one is a byte model
    (scores made after <bos> are stale), nothing otherwise (other models' fingerprints stay as they were)."""
    return dict(BYTE_SCORING) if any(is_byte_model(d) for d in directories) else {}


@dataclass
class Encoded:
    """One document: ids (capped at ``max_tokens``), the UTF-8 bytes they cover, whether it was cut."""

    ids: np.ndarray  # int64
    n_bytes: int
    truncated: bool


class Encoder:
    """Texts -> token ids + covered bytes, for the byte tokenizer (numpy) or any HF tokenizer."""

    def __init__(self, tokenizer: Any | None = None) -> None:
        # None = curate's byte tokenizer
        self.tokenizer = tokenizer
        if tokenizer is None:
            self.bos_id: int | None = BYTE_DOC_START
            self.eos_id: int | None = EOS_ID
            self.pad_id = PAD_ID
        else:
            # a document's first token needs something to be predicted from: BOS, else EOS (GPT-2 style)
            self.bos_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
            self.eos_id = tokenizer.eos_token_id
            pad = tokenizer.pad_token_id
            self.pad_id = pad if pad is not None else (self.eos_id if self.eos_id is not None else 0)

    @property
    def is_bytes(self) -> bool:
        return self.tokenizer is None

    def with_bos(self, ids: np.ndarray) -> np.ndarray:
        """``[BOS] + ids`` (int64), or ``ids`` unchanged for a tokenizer without BOS/EOS: what a
        document is scored as, so its first token is predicted from something."""
        if self.bos_id is None:
            return ids
        return np.concatenate((np.array([self.bos_id], dtype=np.int64), ids))

    def encode(self, texts: list[str], max_tokens: int | None = None) -> list[Encoded]:
        """Encode a batch; ``max_tokens`` caps each document (the rest is not scored)."""
        if self.tokenizer is None:
            return [self._encode_bytes(t, max_tokens) for t in texts]
        return self._encode_hf(texts, max_tokens)

    @staticmethod
    def _encode_bytes(text: str, max_tokens: int | None) -> Encoded:
        raw = text.encode("utf-8")
        ids = np.frombuffer(raw, dtype=np.uint8)
        cut = max_tokens is not None and len(ids) > max_tokens
        if cut:
            ids = ids[:max_tokens]
        return Encoded(ids.astype(np.int64), len(ids), cut)

    def _encode_hf(self, texts: list[str], max_tokens: int | None) -> list[Encoded]:
        enc = self.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True,
                             return_attention_mask=False)
        out = []
        for text, ids, offsets in zip(texts, enc["input_ids"], enc["offset_mapping"]):
            cut = max_tokens is not None and len(ids) > max_tokens
            if cut:
                ids, end_char = ids[:max_tokens], offsets[max_tokens - 1][1]
                n_bytes = len(text[:end_char].encode("utf-8"))
            else:
                n_bytes = len(text.encode("utf-8"))
            out.append(Encoded(np.asarray(ids, dtype=np.int64), n_bytes, cut))
        return out
