"""Deployments of the curate flows with cron schedules: served in-process or sent to a work pool."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flows.ingest import ingest_flow
from flows.mates import mates_stage
from flows.mixture import build_mixture_flow
from flows.score import score_flow
from flows.train_domain import train_domain_flow

ROOT = Path(__file__).resolve().parent.parent


def _mates_parameters(store: str, proxy: str) -> dict[str, Any]:
    """The scheduled MATES stage: the next stage of run ``scheduled`` whenever ``proxy`` holds new weights."""
    return {"store": store, "proxy": proxy, "run": "scheduled", "stage": None}


def deployments(store: str, inputs: list[str], corpus: str, scorers: list[str], cron: str | None,
                mixture: str | None = None, mates_proxy: str | None = None) -> list[Any]:
    """``RunnerDeployment`` objects for ``prefect.serve``; schedules only where inputs make sense.

    ``mixture`` (a spec path) adds ``curate-build-mixture``: a rebuild over the freshly scored store.
    ``mates_proxy`` (a checkpoint a training job keeps overwriting) adds ``curate-mates-stage``: each run
    does the next MATES stage when the checkpoint changed, nothing when it did not.
    """
    out = [
        score_flow.to_deployment(name="curate-score", cron=cron, parameters={"store": store, "scorers": scorers},
                                 tags=["curate"]),
        train_domain_flow.to_deployment(name="curate-train-domain", parameters={"store": store}, tags=["curate"]),
    ]
    if inputs:
        out.append(ingest_flow.to_deployment(name="curate-ingest", cron=cron,
                                             parameters={"store": store, "inputs": inputs, "corpus": corpus},
                                             tags=["curate"]))
    if mixture:
        out.append(build_mixture_flow.to_deployment(name="curate-build-mixture", cron=cron,
                                                    parameters={"store": store, "spec": mixture}, tags=["curate"]))
    if mates_proxy:
        out.append(mates_stage.to_deployment(name="curate-mates-stage", cron=cron,
                                             parameters=_mates_parameters(store, mates_proxy), tags=["curate"]))
    return out


def serve(store: str, inputs: list[str], corpus: str, scorers: list[str], cron: str | None,
          mixture: str | None = None, mates_proxy: str | None = None) -> None:
    from prefect import serve as prefect_serve

    prefect_serve(*deployments(store, inputs, corpus, scorers, cron, mixture, mates_proxy))


def deploy(store: str, scorers: list[str], cron: str, pool: str, mixture: str | None = None,
           mates_proxy: str | None = None) -> list[str]:
    """Deploy from this checkout's source to ``pool`` (a process work pool runs them in place)."""
    names = []
    targets = [
        ("flows/score.py:score_flow", "curate-score", {"store": store, "scorers": scorers}, cron),
        ("flows/train_domain.py:train_domain_flow", "curate-train-domain", {"store": store}, None),
    ]
    if mixture:
        targets.append(("flows/mixture.py:build_mixture_flow", "curate-build-mixture",
                        {"store": store, "spec": mixture}, cron))
    if mates_proxy:
        targets.append(("flows/mates.py:mates_stage", "curate-mates-stage", _mates_parameters(store, mates_proxy), cron))
    for entry, name, params, schedule in targets:
        flow = score_flow.from_source(source=str(ROOT), entrypoint=entry)
        flow.deploy(name=name, work_pool_name=pool, parameters=params, cron=schedule, tags=["curate"],
                    ignore_warnings=True)
        names.append(name)
    return names
