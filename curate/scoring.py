"""The one protocol every scoring method implements.

A scorer turns an Arrow batch of documents (at least ``doc_id`` and ``text``)
into an Arrow batch of ``doc_id`` plus its own typed columns. Scorers only
score: thresholds, bands and mixtures are decided later over stored scores.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar, Protocol, runtime_checkable

import pyarrow as pa

from curate.store import Store


@runtime_checkable
class Scorer(Protocol):
    """What the engine needs from a scoring method."""

    name: str  # feature table name, e.g. "heuristics"
    version: str  # bump when outputs for the same input would change

    @property
    def schema(self) -> pa.Schema:
        """Declared output schema, ``doc_id`` first. Every batch must match it."""
        ...

    def config(self) -> dict[str, Any]:
        """JSON-serialisable settings that change outputs (part of the fingerprint)."""
        ...

    def model_hash(self) -> str | None:
        """Content hash of the model file(s), or None for model-free scorers."""
        ...

    def setup(self) -> None:
        """Load models once per worker; called before the first ``score``."""
        ...

    def score(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Score one batch; rows out must equal rows in, in the same order."""
        ...


class BaseScorer:
    """Convenience base: stores settings, fingerprints them, checks outputs, builds itself from a store."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "0"
    #: Columns the input batch must carry besides ``doc_id``.
    input_columns: ClassVar[tuple[str, ...]] = ("text",)
    #: What the ``model`` setting of :meth:`from_store` names: None (the scorer takes no model), ``"lm"``
    #: (causal LMs: a model in the store, a ``--seeds`` family, a local checkpoint or ``smollm2-135m``; the
    #: CLI's ``--model`` goes to these) or ``"store"`` (a model a curate command trained into the store).
    model_kind: ClassVar[str | None] = None

    def __init__(self, **settings: Any) -> None:
        self.settings = settings

    @classmethod
    def from_store(cls, store: Store, **settings: Any) -> BaseScorer:
        """This scorer for ``store``: the constructor's settings, with model *names* resolved to paths.

        What the CLI, the flows and :func:`scorers.registry.build_scorer` call, so a scorer that needs a
        model resolves it in one place, its own. The default takes settings as they are.
        """
        return cls(**settings)

    @property
    def schema(self) -> pa.Schema:  # pragma: no cover - abstract
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return dict(self.settings)

    def model_hash(self) -> str | None:
        return None

    def setup(self) -> None:
        return None

    def ray_resources(self) -> dict[str, float]:
        """Ray actor options of one worker (``num_cpus``, ``num_gpus``): one CPU by default; LM scorers on a
        CUDA device add a (fractional) GPU, see :meth:`scorers._lm.LMScorer.ray_resources`."""
        return {"num_cpus": 1}

    def score(self, batch: pa.RecordBatch) -> pa.RecordBatch:  # pragma: no cover
        raise NotImplementedError

    def fingerprint(self) -> str:
        """Hash of (name, version, config, model) — what makes an output stale."""
        return scorer_fingerprint(self)


def scorer_fingerprint(scorer: Scorer) -> str:
    payload = json.dumps(
        {
            "name": scorer.name,
            "version": scorer.version,
            "config": scorer.config(),
            "model": scorer.model_hash(),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def check_output(scorer: Scorer, batch_in: pa.RecordBatch, batch_out: pa.RecordBatch) -> pa.RecordBatch:
    """Enforce the contract: declared schema, same rows, same doc_id order."""
    if batch_out.num_rows != batch_in.num_rows:
        raise ValueError(
            f"scorer {scorer.name!r} returned {batch_out.num_rows} rows for {batch_in.num_rows} input rows"
        )
    if not batch_out.schema.equals(scorer.schema, check_metadata=False):
        try:
            batch_out = batch_out.select(scorer.schema.names).cast(scorer.schema)
        except (KeyError, ValueError, pa.ArrowInvalid) as exc:
            raise ValueError(
                f"scorer {scorer.name!r} output schema {batch_out.schema} does not match declared {scorer.schema}"
            ) from exc
    if not batch_out.column("doc_id").equals(batch_in.column("doc_id")):
        raise ValueError(f"scorer {scorer.name!r} changed the doc_id order")
    return batch_out
