"""The ``pipeline`` flow: one scheduled tick of ingest → score → build-mixture, in that order.

Separate deployments on one cron would race (a score started before the ingest it should follow sees
none of the new documents, or no store at all on the first tick); here each step starts when the one
before it has finished, and each still shows up as its own flow run with its own artifact.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.ingest import ingest_flow
from flows.mixture import build_mixture_flow
from flows.score import score_flow


@flow(name="pipeline", log_prints=True)
def pipeline_flow(store: str, inputs: list[str] | None = None, corpus: str = "default",
                  scorers: list[str] | None = None, settings: dict[str, dict[str, Any]] | None = None,
                  workers: int | None = None, mixture: str | None = None) -> dict[str, Any]:
    """Ingest the files of ``inputs`` not yet ingested into ``corpus``, score whatever is missing or stale
    with ``scorers`` (``workers`` as in the score flow), then rebuild ``mixture`` (a spec path) unless the
    store and spec are what it was built from. Each step is skipped when it has nothing to do."""
    out: dict[str, Any] = {}
    if inputs:
        out["ingest"] = ingest_flow(store, inputs, corpus)
    if scorers:
        out["score"] = score_flow(store, scorers, settings, workers=workers)
    if mixture:
        out["mixture"] = build_mixture_flow(store, mixture, reuse=True)
    return out
