"""Deployments of the curate flows on a schedule: served in-process or sent to a work pool.

One list of deployments (:func:`targets`) feeds both ways of running them, so ``curate flows serve``
and ``curate flows deploy --pool P`` schedule exactly the same work with the same parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from prefect import Flow

from curate.errors import ConfigError
from flows.decontam import decontam_flow
from flows.dedup import dedup_flow
from flows.ingest import ingest_flow
from flows.mates import mates_stage
from flows.mixture import build_mixture_flow
from flows.pipeline import pipeline_flow
from flows.score import score_flow
from flows.train_domain import train_domain_flow

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Schedule:
    """When the scheduled deployments run: a cron expression (UTC) or every ``interval`` seconds."""

    cron: str | None = None
    interval: float | None = None

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.interval is None):
            raise ConfigError("give a schedule as either --cron or --interval, not both and not neither")
        if self.interval is not None and self.interval < 1:
            raise ConfigError(f"--interval must be at least 1 second, got {self.interval:g}")
        if self.cron is not None:
            from prefect.client.schemas.schedules import CronSchedule

            try:
                CronSchedule(cron=self.cron)
            except ValueError:
                raise ConfigError(f"--cron {self.cron!r} is not a cron expression: five fields, minute hour "
                                  "day-of-month month day-of-week, e.g. '0 * * * *' (hourly)") from None

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for Prefect's ``to_deployment`` / ``deploy``."""
        return {"cron": self.cron} if self.cron is not None else {"interval": self.interval}


@dataclass(frozen=True)
class Target:
    """One deployment: the flow, where it lives in this checkout, its parameters and whether it is scheduled."""

    flow: Flow
    entrypoint: str
    name: str
    parameters: dict[str, Any]
    scheduled: bool = True


def targets(store: str, inputs: list[str], corpus: str, scorers: list[str], mixture: str | None = None,
            mates_proxy: str | None = None, workers: int | None = None) -> list[Target]:
    """The deployments a scheduled pipeline over ``store`` needs.

    ``curate-pipeline`` runs on the schedule: ingest the files of ``inputs`` (files or landing directories)
    it has not finished, score what is missing or stale with ``scorers`` (``workers``: the engine's worker
    count; None: one Ray actor per CPU; 0: inside the flow run, no Ray), then rebuild ``mixture`` (a spec
    path) when the store changed — in that order, one tick at a time. ``mates_proxy`` (a checkpoint a
    training job keeps overwriting) adds a scheduled ``curate-mates-stage``: the next MATES stage when the
    checkpoint changed, nothing when it did not. Each step is also deployed alone, unscheduled, to run by
    hand (``prefect deployment run score/curate-score``), as are ``curate-train-domain``, ``curate-dedup``
    (MinHash what is new, cluster near-duplicates) and ``curate-decontam`` (run with ``--param target=CORPUS``).
    """
    score = {"store": store, "scorers": scorers, **({"workers": workers} if workers is not None else {})}
    pipeline = {"store": store, "inputs": inputs, "corpus": corpus, "scorers": scorers, "workers": workers,
                "mixture": mixture}
    out = [Target(pipeline_flow, "flows/pipeline.py:pipeline_flow", "curate-pipeline",
                  {k: v for k, v in pipeline.items() if v not in (None, [])}),
           Target(score_flow, "flows/score.py:score_flow", "curate-score", score, scheduled=False),
           Target(train_domain_flow, "flows/train_domain.py:train_domain_flow", "curate-train-domain",
                  {"store": store}, scheduled=False),
           Target(dedup_flow, "flows/dedup.py:dedup_flow", "curate-dedup",
                  {"store": store, **({"workers": workers} if workers is not None else {})}, scheduled=False),
           Target(decontam_flow, "flows/decontam.py:decontam_flow", "curate-decontam",
                  {"store": store, **({"workers": workers} if workers is not None else {})}, scheduled=False)]
    if inputs:
        out.append(Target(ingest_flow, "flows/ingest.py:ingest_flow", "curate-ingest",
                          {"store": store, "inputs": inputs, "corpus": corpus}, scheduled=False))
    if mixture:
        out.append(Target(build_mixture_flow, "flows/mixture.py:build_mixture_flow", "curate-build-mixture",
                          {"store": store, "spec": mixture}, scheduled=False))
    if mates_proxy:
        out.append(Target(mates_stage, "flows/mates.py:mates_stage", "curate-mates-stage",
                          {"store": store, "proxy": mates_proxy, "run": "scheduled", "stage": None}))
    return out


def with_parameters(all_targets: list[Target], overrides: dict[str, dict[str, Any]]) -> list[Target]:
    """``all_targets`` with parameters overridden per deployment (``{"mates-stage": {"probes": 400}}``).

    A deployment that is not in the list, or a parameter its flow does not take, is refused naming it.
    """
    by_name = {t.name.removeprefix("curate-"): t for t in all_targets}
    for short, values in overrides.items():
        if short not in by_name:
            raise ConfigError(f"--param {short}.*: no deployment curate-{short} here (deployments: "
                              f"{', '.join(sorted(by_name))})")
        takes = set(by_name[short].flow.parameters.properties)
        unknown = sorted(set(values) - takes)
        if unknown:
            raise ConfigError(f"--param {short}.{unknown[0]}: the {by_name[short].flow.name} flow takes no parameter "
                              f"{unknown[0]!r} (it takes {', '.join(sorted(takes))})")
    return [replace(t, parameters={**t.parameters, **overrides.get(t.name.removeprefix("curate-"), {})})
            for t in all_targets]


def _when(target: Target, schedule: Schedule) -> dict[str, Any]:
    """Schedule keywords for a scheduled target; one run at a time, so a slow tick delays the next instead of
    piling runs onto the same machine."""
    return {**schedule.kwargs(), "concurrency_limit": 1} if target.scheduled else {}


def runner_deployments(all_targets: list[Target], schedule: Schedule) -> list[Any]:
    """``RunnerDeployment`` objects for ``prefect.serve``, the scheduled ones with ``schedule``."""
    return [t.flow.to_deployment(name=t.name, parameters=t.parameters, tags=["curate"], **_when(t, schedule))
            for t in all_targets]


def serve(all_targets: list[Target], schedule: Schedule) -> None:
    """Register the deployments with the Prefect API and run their flow runs from this process."""
    from prefect import serve as prefect_serve

    prefect_serve(*runner_deployments(all_targets, schedule))


def deploy(all_targets: list[Target], schedule: Schedule, pool: str) -> list[str]:
    """Register the deployments with ``pool``, from this checkout's source (a process work pool runs them in place)."""
    names = []
    for t in all_targets:
        flow = Flow.from_source(source=str(ROOT), entrypoint=t.entrypoint)
        flow.deploy(name=t.name, work_pool_name=pool, parameters=t.parameters, tags=["curate"],
                    ignore_warnings=True, **_when(t, schedule))
        names.append(t.name)
    return names
