"""The selection experiment at its tiny scale, run once for the whole package on a fresh store.

The store is built by the experiment itself from real embedded documents (480 pool,
160 held-out, 1,000 characters each); the features are made by the real recipe (reference
LM, EL2N proxies, a PreSelect family and selector), every method trains the real LM, and
MATES probes the live model. About 30 s; torch runs on one thread (the experiment sets it).
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """(result, store path, out path, log lines) of ``run_experiment(scale='tiny')`` on an empty directory."""
    from curate.experiment import run_experiment

    root = tmp_path_factory.mktemp("experiment")
    lines: list[str] = []
    result = run_experiment(root / "store", root / "out", scale="tiny", log=lines.append)
    return result, root / "store", root / "out", lines
