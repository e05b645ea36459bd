"""The demo pipeline as one Prefect flow: ingest the embedded corpus → train the domain model → score."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from prefect import flow

from curate.embedded import ingest_embedded
from curate.store import Store
from flows.mixture import build_mixture_flow
from flows.score import score_flow
from flows.train_domain import train_domain_flow

DEMO_SCORERS = ["heuristics", "langid", "domain"]
DEMO_MIXTURE = Path(__file__).resolve().parent.parent / "examples" / "mixtures" / "demo.yaml"


@flow(name="demo", log_prints=True)
def demo_flow(store: str, fresh: bool = False, scorers: list[str] | None = None, workers: int | None = None,
              progress: bool | None = None) -> dict[str, Any]:
    """Everything that has landed, on the embedded real corpus; re-running only does missing work."""
    if fresh and Path(store).exists():
        shutil.rmtree(store)
    st = Store.open(store, create=True)
    ingests = ingest_embedded(st, progress=progress)
    # the domain model learns from the pool only; the held-out split measures it honestly later
    card = train_domain_flow(store, labels_sql="SELECT doc_id, text, domain AS label FROM docs WHERE corpus = 'demo'")
    reports = score_flow(store, scorers or DEMO_SCORERS, workers=workers, progress=progress)
    mixture = build_mixture_flow(store, str(DEMO_MIXTURE))
    return {"ingests": [s.to_dict() for s in ingests], "domain_model": card, "scoring": reports, "mixture": mixture}
