"""``curate flows serve|deploy``: the scheduled deployments, served here or registered with a work pool."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from curate.cli.common import StoreOpt, console, friendly, parse_settings

flows_app = typer.Typer(help="Prefect deployments on a schedule: serve them here, or register them with a work pool.",
                        no_args_is_help=True)


MixtureOpt = Annotated[Path | None, typer.Option(
    "--mixture", help="A mixture spec (YAML): each scheduled tick rebuilds it after scoring, when the store changed.")]


MatesProxyOpt = Annotated[str | None, typer.Option(
    "--mates-proxy", help="A checkpoint a training job keeps saving (store model name or local directory): adds a "
                          "mates-stage deployment that runs the next MATES stage whenever its weights changed.")]


def _spec_path(spec: Path | None) -> str | None:
    """A spec checked now (not at the first scheduled run) and passed as an absolute path."""
    if spec is None:
        return None
    from curate.mixture import load_spec

    load_spec(spec)
    return str(spec.resolve())


InputsOpt = Annotated[list[str] | None, typer.Option(
    "--input", help="Files or landing directories the scheduled ingest reads (repeatable); each run ingests only "
                    "the files it has not finished.")]
CorpusOpt = Annotated[str, typer.Option(help="Corpus the scheduled ingest writes.")]
ScorersOpt = Annotated[str, typer.Option(help="Scorers the scheduled score runs (comma-separated).")]
CronOpt = Annotated[str | None, typer.Option(help="Cron schedule (UTC) of every scheduled deployment. "
                                                  "Default '0 * * * *' (hourly) unless --interval is given.")]
IntervalOpt = Annotated[float | None, typer.Option(help="Run every this many seconds instead of on a cron schedule.")]
WorkersOpt = Annotated[int | None, typer.Option(
    help="Scoring workers of the scheduled score (default: one Ray actor per CPU; 0: inside the flow run, no Ray).")]
ParamOpt = Annotated[list[str] | None, typer.Option(
    "--param", help="A flow parameter of one deployment, DEPLOYMENT.KEY=VALUE (VALUE as JSON when it parses; "
                    "repeatable), e.g. --param mates-stage.probes=400 --param ingest.max_doc_bytes=1000000.")]


def _deployments(store: Path | str, inputs: list[str] | None, corpus: str, scorers: str, cron: str | None,
                 interval: float | None, workers: int | None, mixture: Path | None, mates_proxy: str | None,
                 params: list[str] | None):
    """The deployment list and schedule ``serve`` and ``deploy`` share, checked before anything is registered."""
    from flows.deployments import Schedule, targets, with_parameters

    schedule = Schedule(cron=cron if cron is not None or interval is not None else "0 * * * *", interval=interval)
    # absolute paths: the flow runs in another process (a worker, a served run) that may have another cwd
    absolute = [i if "://" in i else str(Path(i).resolve()) for i in inputs or []]
    store_uri = str(store) if "://" in str(store) else str(Path(store).resolve())
    found = targets(store_uri, absolute, corpus, [s for s in scorers.split(",") if s], _spec_path(mixture),
                    mates_proxy, workers)
    return with_parameters(found, parse_settings(params or [], "--param", "mates-stage.probes=400")), schedule


@flows_app.command("serve")
@friendly
def flows_serve(
    store: StoreOpt = "store",
    inputs: InputsOpt = None,
    corpus: CorpusOpt = "default",
    scorers: ScorersOpt = "heuristics,langid",
    cron: CronOpt = None,
    interval: IntervalOpt = None,
    workers: WorkersOpt = None,
    mixture: MixtureOpt = None,
    mates_proxy: MatesProxyOpt = None,
    param: ParamOpt = None,
) -> None:
    """Serve the ingest, score, train-domain (build-mixture, mates-stage) deployments from this process.

    Registers them with the Prefect API (PREFECT_API_URL, e.g. a `prefect server start`; without it a
    temporary local server) and runs every flow run the schedule creates until Ctrl-C.
    """
    from flows.deployments import serve

    all_targets, schedule = _deployments(store, inputs, corpus, scorers, cron, interval, workers, mixture, mates_proxy, param)
    serve(all_targets, schedule)


@flows_app.command("deploy")
@friendly
def flows_deploy(
    pool: Annotated[str, typer.Option(help="Prefect work pool to deploy to (create it with `prefect work-pool create`).")],
    store: StoreOpt = "store",
    inputs: InputsOpt = None,
    corpus: CorpusOpt = "default",
    scorers: ScorersOpt = "heuristics,langid",
    cron: CronOpt = None,
    interval: IntervalOpt = None,
    workers: WorkersOpt = None,
    mixture: MixtureOpt = None,
    mates_proxy: MatesProxyOpt = None,
    param: ParamOpt = None,
) -> None:
    """Register the same deployments with a Prefect server and work pool; `prefect worker start --pool P` runs them."""
    from flows.deployments import deploy

    all_targets, schedule = _deployments(store, inputs, corpus, scorers, cron, interval, workers, mixture, mates_proxy, param)
    for name in deploy(all_targets, schedule, pool):
        console.print(f"deployed [bold]{name}[/] to pool {pool}")




def register(app: typer.Typer) -> None:
    """Add ``flows serve|deploy`` to the main app."""
    app.add_typer(flows_app, name="flows")
