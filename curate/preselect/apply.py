"""Scoring with a PreSelect selector: one trained in the store, or a published ``.bin``.

The work is the engine's (:func:`curate.execute.run_scorer` with the ``preselect`` scorer):
shards already scored by the same selector and settings are skipped, rows out equal rows in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from curate.store import Store

MODEL_FILE, CARD_FILE = "model.bin", "card.json"


def selector_settings(store: Store, name: str = "preselect") -> dict[str, Any]:
    """Scorer settings for a selector trained in the store: its path and the cap it was trained with."""
    from curate.fasttext import store_model_file

    path = store_model_file(store, name, "PreSelect selector", "curate preselect train", MODEL_FILE)
    card = store.read_json(f"{store.models_dir(name)}/{CARD_FILE}") or {}
    settings: dict[str, Any] = {"model_path": path}
    if card.get("preprocess", {}).get("max_chars"):
        settings["max_chars"] = card["preprocess"]["max_chars"]
    if card.get("positive_label"):
        settings["positive_label"] = card["positive_label"]
    return settings


def score(store: Store | str, *, name: str = "preselect", model_path: str | None = None,
          positive_label: str | None = None, max_chars: int | None = None, corpora: Sequence[str] | None = None,
          workers: int | None = 0, progress: bool | None = None) -> Any:
    """Add ``preselect_score`` to every document (feature table ``preselect``); returns the engine's report.

    ``model_path`` scores with any PreSelect ``.bin`` (e.g. the published one; set
    ``positive_label`` if its positive class is not ``1``); otherwise the selector
    ``models/<name>/``. ``workers=0`` scores in this process; ``None`` uses Ray.
    Shards already scored by the same model and settings are skipped.
    """
    from curate.execute import run_scorer
    from curate.preselect.scorer import PreSelectScorer

    st = Store.of(store)
    settings: dict[str, Any] = {"model_path": model_path} if model_path else selector_settings(st, name)
    if positive_label is not None:
        settings["positive_label"] = positive_label
    if max_chars is not None:
        settings["max_chars"] = max_chars
    return run_scorer(st, PreSelectScorer(**settings), corpora=corpora, workers=workers, progress=progress)
