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
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.hashing import file_sha256
from curate.scoring import BaseScorer

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
    labels: list[list[str]] = []
    for i, text in enumerate(texts):
        # "replace": a label that is not valid UTF-8 must not kill a shard.
        pairs = predict(prepare_line(text), k, threshold, "replace")
        labels.append([lab.removeprefix(LABEL_PREFIX) for _, lab in pairs])
        for j, (prob, _) in enumerate(pairs[:k]):
            probs[i, j] = prob
    # fastText's softmax can overshoot 1.0 by float error; keep probabilities valid.
    np.clip(probs, 0.0, 1.0, out=probs)
    return labels, probs


def label_token(label: str) -> str:
    """fastText's ``__label__`` token for ``label`` (spaces would split it, so they become ``_``)."""
    return LABEL_PREFIX + label.replace(" ", "_")


def model_labels(model: Any) -> list[str]:
    """The model's labels without the ``__label__`` prefix, in the model's order."""
    return [lab.removeprefix(LABEL_PREFIX) for lab in model.f.getLabels("replace")[0]]


def label_and_top(model: Any, texts: list[str], label: str) -> tuple[np.ndarray, list[str | None], np.ndarray]:
    """``(P(label), top label, top probability)`` per text, in one pass over fastText's answers.

    The fast path for selectors (PreSelect, DCLM-style ``.bin``): every label is asked for (its
    probability is then exact, not cut by ``k``), and the answer is read once without building
    per-document label lists. float32 arrays; probabilities clipped to [0, 1].
    """
    n = len(texts)
    p_label = np.zeros(n, dtype=np.float32)
    p_top = np.zeros(n, dtype=np.float32)
    top: list[str | None] = [None] * n
    if n == 0:
        return p_label, top, p_top
    k = len(model_labels(model))
    token = label_token(label)
    predict = model.f.predict
    for i, text in enumerate(texts):
        pairs = predict(prepare_line(text), k, 0.0, "replace")
        if not pairs:
            continue
        p_top[i], first = pairs[0]
        top[i] = first.removeprefix(LABEL_PREFIX)
        for prob, lab in pairs:
            if lab == token:
                p_label[i] = prob
                break
    np.clip(p_label, 0.0, 1.0, out=p_label)
    np.clip(p_top, 0.0, 1.0, out=p_top)
    return p_label, top, p_top


def label_probs(model: Any, texts: list[str], label: str) -> np.ndarray:
    """float32 P(``label``) for each text (0.0 where the model never ranks it), for any number of labels."""
    return label_and_top(model, texts, label)[0]


def fit_supervised(examples: Iterable[tuple[str, str]], out_file: str | os.PathLike[str], *, threads: int | None = None,
                   seed: int = 0, **params: Any) -> Path:
    """Train a supervised fastText model on (label, text) pairs and save it to ``out_file``.

    Each text goes through :func:`prepare_line`, exactly as :func:`predict_batch` prepares
    it at scoring time (newlines to spaces, case kept). ``params`` are fastText's own
    (``lr``, ``dim``, ``wordNgrams``, ``epoch``, ``bucket`` ...).
    """
    import tempfile

    import fasttext

    out = Path(out_file)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        train_file = Path(tmp) / "train.txt"
        with open(train_file, "w", encoding="utf-8") as f:
            f.writelines(f"{label_token(label)} {prepare_line(text)}" for label, text in examples)
        model = fasttext.train_supervised(input=str(train_file), thread=threads or os.cpu_count() or 1, seed=seed,
                                          verbose=0, **params)
    model.save_model(str(out))
    return out


def store_model_file(store: Any, name: str, kind: str, how: str, file: str = "model.bin") -> str:
    """Local path of ``models/<name>/<file>`` in a store, with a clear error when it was never trained.

    ``kind`` names the model in messages ("domain model"), ``how`` is the command that trains it.
    """
    from curate.errors import ConfigError

    rel = f"{store.models_dir(name)}/{file}"
    if not store.exists(rel):
        raise ConfigError(f"no {kind} {name!r} in the store: run `{how} --store {store.uri}` first")
    if not store.is_local:
        raise ConfigError(f"{kind}s must live in a local store for now (fastText loads from a local path)")
    return store.path(rel)


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
