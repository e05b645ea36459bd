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
    names = set()
    for dep in spec["deployments"]:
        module_path, func = dep["entrypoint"].split(":")
        module = importlib.import_module(module_path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, func)
        assert isinstance(flow, Flow), dep["name"]
        accepted = set(inspect.signature(flow.fn).parameters)
        assert set(dep["parameters"]) <= accepted, (dep["name"], set(dep["parameters"]) - accepted)
        assert dep["work_pool"]["name"] == "curate" and dep["schedules"][0]["cron"].count(" ") == 4
        names.add(dep["name"])
    assert {"curate-score", "curate-ingest", "curate-train-domain", "curate-mates-stage"} <= names
