"""The ``score`` flow: for each scorer, list (shard × scorer) work, skip what is done, run the rest on Ray."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from curate.errors import CurateError
from curate.execute import ScoreReport, run_scorer
from curate.render import markdown_rows
from curate.scoring import Scorer
from curate.store import Store
from scorers.registry import build_scorers


class ShardFailures(CurateError):
    """Some shards failed after their retries; the rest were scored and saved."""


@task(name="score-shards", task_run_name="score-{scorer.name}", cache_policy=NO_CACHE)
def score_task(store: Store, scorer: Scorer, corpora: list[str] | None, workers: int | None, retries: int,
               ray_address: str | None, progress: bool | None) -> ScoreReport:
    log = get_run_logger()
    report = run_scorer(store, scorer, corpora=corpora, workers=workers, retries=retries,
                        ray_address=ray_address, progress=progress)
    log.info("%s: %d shards scored, %d up to date, %d failed, %d docs in %.1fs",
             scorer.name, report.done, report.skipped, len(report.failed), report.rows, report.seconds)
    return report


def reports_markdown(reports: list[ScoreReport]) -> str:
    table = "\n".join(markdown_rows([r.as_row() for r in reports])) + "\n"
    failures = "".join(
        f"- `{r.scorer}` `{f['shard']}` after {f['attempts']} attempt(s): {f['error']}\n" for r in reports for f in r.failed
    )
    lost = "".join(f"- `{node}` left the cluster while `{r.scorer}` scored a shard there; the shard went to the "
                   f"workers left\n" for r in reports for node in r.lost_nodes)
    return ("## curate score\n\n" + table + (f"\n### failed shards\n\n{failures}" if failures else "")
            + (f"\n### Ray nodes lost\n\n{lost}" if lost else ""))


@flow(name="score", log_prints=True)
def score_flow(
    store: str,
    scorers: list[str],
    settings: dict[str, dict[str, Any]] | None = None,
    corpora: list[str] | None = None,
    workers: int | None = None,
    retries: int = 1,
    ray_address: str | None = None,
    progress: bool | None = None,
) -> list[dict[str, Any]]:
    """Score ``corpora`` (default: all) of ``store`` with each named scorer; fail if any shard failed."""
    st = Store.open(store)
    built = build_scorers(st, scorers, settings)  # refuse bad config before any work
    reports = [score_task(st, s, corpora, workers, retries, ray_address, progress) for s in built]
    create_markdown_artifact(reports_markdown(reports), key="curate-score", description="curate score summary")
    failed = [f"{r.scorer}:{f['shard']}: {f['error']}" for r in reports for f in r.failed]
    if failed:
        raise ShardFailures(f"{len(failed)} shard(s) failed; the rest were saved. Re-run to retry them.\n" + "\n".join(failed))
    return [r.as_row() for r in reports]
