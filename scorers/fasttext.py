"""Apply any fastText classifier (``.bin``/``.ftz``): P(label) per document.

For published selectors a user has (a PreSelect or DCLM ``.bin``), or the
models curate trains. Documents are preprocessed exactly as at training time
(newlines → spaces, no lowercasing), and no document is dropped whatever its
top label — selection happens later over the stored probability.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from curate.errors import ConfigError
from curate.fasttext import FastTextModelScorer, heads, label_and_top


class FastTextScorer(FastTextModelScorer):
    """Columns: ``<column>`` = P(``label``), ``<column>_top`` = the top label, ``<column>_top_prob``.

    ``table`` names the feature table, so several models can be applied side by side
    (``table="dclm"``, ``table="preselect"``).
    """

    name: ClassVar[str] = "fasttext"
    version: ClassVar[str] = "1"

    def __init__(self, model_path: str, label: str | None = None, table: str = "fasttext",
                 column: str | None = None, max_chars: int | None = None) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise ConfigError(f"fastText model {str(path)!r} not found: train one or pass the path of a .bin")
        if max_chars is not None and max_chars <= 0:
            raise ConfigError(f"max_chars must be positive, got {max_chars}")
        super().__init__(label=label, max_chars=max_chars)
        self.name = table  # type: ignore[misc]  # the instance names its own feature table
        self.model_path = path.resolve()
        self.column = column or f"{table}_score"
        self._labels: list[str] = []
        self._target = ""

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([
            ("doc_id", pa.string()),
            (self.column, pa.float32()),
            (f"{self.column}_top", pa.string()),
            (f"{self.column}_top_prob", pa.float32()),
        ])

    def config(self) -> dict[str, Any]:
        return {**self.settings, "column": self.column}

    def setup(self) -> None:
        if self._model is not None:
            return
        super().setup()
        self._labels = [lab.removeprefix("__label__") for lab in self._model.f.getLabels("replace")[0]]
        label = self.settings["label"]
        if label is None:  # binary selectors: the positive class is the non-"negative" one, else the first
            label = next((lab for lab in self._labels if lab not in ("neg", "negative", "0", "cc")), self._labels[0])
        if label not in self._labels:
            raise ConfigError(f"label {label!r} is not in the model; its labels are {', '.join(self._labels)}")
        self._target = label

    def score(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        self.setup()
        texts = heads(batch.column("text"), self.settings["max_chars"])
        p, top, p_top = label_and_top(self._model, texts, self._target)
        return pa.RecordBatch.from_arrays(
            [batch.column("doc_id"), pa.array(p, pa.float32()), pa.array(top, pa.string()), pa.array(p_top, pa.float32())],
            schema=self.schema,
        )
