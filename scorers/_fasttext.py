"""Low-level fastText helpers shared by the fastText-based scorers.

``fasttext-wheel`` 0.9.2's Python ``predict()`` calls ``np.array(..., copy=False)``,
which NumPy 2 rejects, so everything here talks to the pybind object
(``model.f``) directly.

Its ``multilinePredict`` is *not* used: in 0.9.2 it returns the top-1
probability repeated for every one of the k labels (the labels are right, the
probabilities wrong), and on lid.176.ftz it was only ~4% faster than calling
``predict`` per line, because the model's own work (char n-grams, softmax)
dominates the per-call overhead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.hashing import file_sha256
from scorers.base import BaseScorer

LABEL_PREFIX = "__label__"


def load_fasttext(path: str | os.PathLike[str]) -> Any:
    """Load a fastText model (``.bin`` or ``.ftz``) without the stderr warning.

    ``fasttext.load_model`` only adds an unconditional deprecation print before
    building ``_FastText``; building it directly keeps worker logs clean.
    """
    from fasttext.FastText import _FastText

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"fastText model not found: {path}")
    return _FastText(model_path=str(path))


def prepare_line(text: str) -> str:
    """Make one document a single fastText input line.

    fastText stops reading a line at ``\\n`` (everything after it would be
    silently ignored), so newlines become spaces; the trailing ``\\n`` adds
    the end-of-sentence token the models were trained with.
    """
    return text.replace("\n", " ") + "\n"


def predict_batch(
    model: Any,
    texts: list[str],
    k: int = 1,
    threshold: float = 0.0,
) -> tuple[list[list[str]], np.ndarray]:
    """Top-``k`` labels and probabilities for each text.

    Returns ``(labels, probs)``: ``labels[i]`` lists up to ``k`` labels without
    the ``__label__`` prefix, best first; ``probs`` is a float32 ``(n, k)``
    array aligned with them, padded with 0.0 where fewer than ``k`` labels came
    back (a model with fewer labels, or ``threshold`` cut them).
    Newlines inside a text are treated as spaces (see ``prepare_line``).
    """
    n = len(texts)
    probs = np.zeros((n, k), dtype=np.float32)
    if n == 0:
        return [], probs
    predict = model.f.predict
    cut = len(LABEL_PREFIX)
    labels: list[list[str]] = []
    for i, text in enumerate(texts):
        # "replace": a label that is not valid UTF-8 must not kill a shard.
        pairs = predict(prepare_line(text), k, threshold, "replace")
        labels.append([lab[cut:] if lab.startswith(LABEL_PREFIX) else lab for _, lab in pairs])
        for j, (prob, _) in enumerate(pairs[:k]):
            probs[i, j] = prob
    # fastText's softmax can overshoot 1.0 by float error; keep probabilities valid.
    np.clip(probs, 0.0, 1.0, out=probs)
    return labels, probs


def heads(text: pa.Array | pa.ChunkedArray, max_chars: int | None) -> list[str]:
    """The first ``max_chars`` characters of each text (nulls as ""), sliced in Arrow so
    multi-MB documents are never copied whole into Python."""
    if text.null_count:
        text = pc.fill_null(text, "")
    if max_chars:
        text = pc.utf8_slice_codeunits(text, 0, max_chars)
    return text.to_pylist()


def top_k_array(labels: list[list[str]], probs: np.ndarray, key: str) -> pa.Array:
    """``list<struct<key, prob>>`` of each row's labels, best first."""
    typ = pa.list_(pa.struct([(key, pa.string()), ("prob", pa.float32())]))
    return pa.array([[{key: lab, "prob": float(p)} for lab, p in zip(labs, ps)] for labs, ps in zip(labels, probs)], typ)


class FastTextModelScorer(BaseScorer):
    """Base for scorers backed by one fastText model file: hashed for fingerprints, loaded once per worker."""

    model_path: Path
    _model: Any = None

    def model_hash(self) -> str:
        return file_sha256(self.model_path)

    def setup(self) -> None:
        if self._model is None:
            self._model = load_fasttext(self.model_path)
