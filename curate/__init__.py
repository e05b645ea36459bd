"""curate: score a pretraining corpus with modern selection methods and build token-budgeted mixtures.

Importing curate starts neither Prefect nor Ray; heavy pieces load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "Store": ("curate.store", "Store"),
    "ingest": ("curate.ingestion", "ingest"),
    "FieldMap": ("curate.ingestion", "FieldMap"),
    "connect": ("curate.query", "connect"),
    "doc_id": ("curate.docid", "doc_id"),
    "CurateError": ("curate.errors", "CurateError"),
    "MixtureDataset": ("curate.mixture.loader", "MixtureDataset"),
    "build_mixture": ("curate.mixture.build", "build_mixture"),
    "export_mixture": ("curate.mixture.export", "export_mixture"),
    "MatesSelector": ("curate.mates.selector", "MatesSelector"),
}

if TYPE_CHECKING:  # pragma: no cover
    from curate.docid import doc_id
    from curate.errors import CurateError
    from curate.ingestion import FieldMap, ingest
    from curate.mates.selector import MatesSelector
    from curate.mixture.build import build_mixture
    from curate.mixture.export import export_mixture
    from curate.mixture.loader import MixtureDataset
    from curate.query import connect
    from curate.store import Store


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'curate' has no attribute {name!r}")


__all__ = sorted(_LAZY)
