"""The build-mixture Prefect flow (real engine), its deployment, and `curate mix plan|build|inspect`."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from tests.mixture._specs import spec_dict


def _spec_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec_dict(name=name, tokens=50_000)))
    return path


def test_flow_builds_the_spec_and_the_cli_inspects_it(mix_store, tmp_path):
    # the flow first: an in-process flow run after a CliRunner invocation trips over its closed streams
    from flows.mixture import build_mixture_flow

    data = build_mixture_flow(str(mix_store.root), str(_spec_file(tmp_path, "flowmix")))
    assert data["name"] == "flowmix" and data["tokens"]["planned"] == sum(p["tokens"] for p in data["parts"])
    assert Path(mix_store.path(mix_store.mixtures_dir("flowmix"), "report.md")).is_file()

    from curate.cli import app

    runner = CliRunner()
    spec = _spec_file(tmp_path, "climix")
    planned = runner.invoke(app, ["mix", "plan", str(spec), "--store", str(mix_store.root)])
    assert planned.exit_code == 0, planned.output
    assert "of 50,000 tokens" in " ".join(planned.output.split()) and "anneal" in planned.output
    assert not Path(mix_store.path(mix_store.mixtures_dir("climix"))).exists()  # a dry run writes nothing
    built = runner.invoke(app, ["mix", "build", str(spec), "--store", str(mix_store.root)])
    assert built.exit_code == 0 and "climix" in built.output, built.output
    shown = runner.invoke(app, ["mix", "inspect", "climix", "--store", str(mix_store.root)])
    assert shown.exit_code == 0 and "anneal" in shown.output and "report.md" in shown.output, shown.output
    missing = runner.invoke(app, ["mix", "inspect", "nope", "--store", str(mix_store.root)])
    assert missing.exit_code != 0 and "curate mix build" in " ".join(missing.output.split())


def test_deployment_rebuilds_the_mixture_on_the_schedule(mix_store, tmp_path):
    from flows.deployments import Schedule, runner_deployments, targets

    spec = str(_spec_file(tmp_path, "sched"))
    deps = {d.name: d for d in runner_deployments(targets(str(mix_store.root), [], "c", ["heuristics"], spec),
                                                  Schedule(cron="0 3 * * *"))}
    assert {"curate-pipeline", "curate-score", "curate-build-mixture"} <= set(deps)
    # the pipeline scores then rebuilds on the schedule; the build-mixture deployment alone is for runs by hand
    tick = deps["curate-pipeline"]
    assert tick.parameters == {"store": str(mix_store.root), "corpus": "c", "scorers": ["heuristics"], "mixture": spec}
    assert tick.schedules and tick.schedules[0].schedule.cron == "0 3 * * *"
    assert deps["curate-build-mixture"].parameters == {"store": str(mix_store.root), "spec": spec}
    assert not deps["curate-build-mixture"].schedules
    assert "curate-build-mixture" not in {t.name for t in targets(str(mix_store.root), [], "c", [])}
