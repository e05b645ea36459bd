"""PreSelect: P(positive) of a PreSelect fastText selector for every document.

The selector is one trained by :func:`curate.preselect.train` (labels ``1`` = perfect
predictive strength, ``0`` = lowest) or a published PreSelect ``.bin`` a user has (the
authors' classifier also writes ``__label__1`` / ``__label__0``; another naming is a
setting). Documents are prepared exactly as at training time: newlines become spaces,
case is kept (the released pipeline trains with spaces but scores with newlines
deleted; curate does not). No document is dropped, whatever its top label: selection
happens later, over the stored score (``sql/select_preselect_top.sql``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from curate.errors import ConfigError
from curate.fasttext import FastTextModelScorer, heads, label_probs, model_labels
from curate.store import Store

POSITIVE_LABEL = "1"


class PreSelectScorer(FastTextModelScorer):
    """Column ``preselect_score`` (float32) = P(``positive_label``) under the selector, in [0, 1].

    ``max_chars`` caps each document before prediction; a selector trained by curate is
    resolved with the cap it was trained with (``from_store``), a user's ``.bin``
    scores whole documents unless told otherwise.
    """

    name: ClassVar[str] = "preselect"
    version: ClassVar[str] = "1"
    model_kind: ClassVar[str | None] = "store"

    @classmethod
    def from_store(cls, store: Store, **settings: Any) -> PreSelectScorer:
        """``model``: a selector ``curate preselect train`` trained (default ``preselect``), scored with the
        preprocessing it was trained with; or ``model_path``: any PreSelect ``.bin``."""
        from curate.preselect.apply import selector_settings

        if "model_path" not in settings:
            settings = {**selector_settings(store, settings.pop("model", "preselect")), **settings}
        return cls(**settings)

    def __init__(self, model_path: str, positive_label: str = POSITIVE_LABEL, max_chars: int | None = None) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise ConfigError(f"PreSelect model {str(path)!r} not found: train one with `curate preselect train` "
                              "or pass the path of a published PreSelect .bin")
        if max_chars is not None and max_chars <= 0:
            raise ConfigError(f"max_chars must be positive, got {max_chars}")
        positive_label = str(positive_label).removeprefix("__label__")
        super().__init__(positive_label=positive_label, max_chars=max_chars)
        self.model_path = path.resolve()

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([("doc_id", pa.string()), ("preselect_score", pa.float32())])

    def setup(self) -> None:
        if self._model is not None:
            return
        super().setup()
        labels = model_labels(self._model)
        if self.settings["positive_label"] not in labels:
            raise ConfigError(f"positive_label {self.settings['positive_label']!r} is not a label of {self.model_path}; "
                              f"its labels are {', '.join(labels)} (set preselect.positive_label)")

    def __getstate__(self) -> dict[str, Any]:
        # shipped to Ray actors before setup: the fastText object does not pickle
        return {**self.__dict__, "_model": None}

    def score(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        self.setup()
        texts = heads(batch.column("text"), self.settings["max_chars"])
        p = label_probs(self._model, texts, self.settings["positive_label"])
        return pa.RecordBatch.from_arrays([batch.column("doc_id"), pa.array(p, pa.float32())], schema=self.schema)
