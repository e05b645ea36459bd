"""prefect.yaml (for `prefect deploy --all`): every entrypoint is a curate flow that takes the parameters given."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import yaml
from prefect import Flow

ROOT = Path(__file__).resolve().parents[2]


def test_every_deployment_names_a_flow_and_only_its_parameters():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    names, scheduled = set(), set()
    for dep in spec["deployments"]:
        module_path, func = dep["entrypoint"].split(":")
        module = importlib.import_module(module_path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, func)
        assert isinstance(flow, Flow), dep["name"]
        accepted = set(inspect.signature(flow.fn).parameters)
        assert set(dep["parameters"]) <= accepted, (dep["name"], set(dep["parameters"]) - accepted)
        assert dep["work_pool"]["name"] == "curate"
        assert all(s["cron"].count(" ") == 4 for s in dep.get("schedules", [])), dep["name"]
        names.add(dep["name"])
        if dep.get("schedules"):
            scheduled.add(dep["name"])
    assert {"curate-pipeline", "curate-score", "curate-ingest", "curate-train-domain", "curate-mates-stage",
            "curate-dedup", "curate-decontam"} <= names
    # ingest and score run in order inside the pipeline: scheduling them apart again would race
    assert scheduled == {"curate-pipeline", "curate-train-domain", "curate-mates-stage"}
