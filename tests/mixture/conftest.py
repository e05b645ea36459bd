"""A small real store for mixture tests: 320 real documents, 8 domains, ingested with curate.ingest."""

from __future__ import annotations

import json

import pytest

from curate import ingest
from curate.store import Store


@pytest.fixture(scope="module")
def mix_store(tmp_path_factory, real_docs) -> Store:
    d = tmp_path_factory.mktemp("mix")
    src = d / "docs.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in real_docs))
    ingest([src], d / "store", "c", progress=False)
    return Store.open(d / "store")


@pytest.fixture(scope="module")
def domain_tokens(mix_store) -> dict[str, int]:
    from curate import connect

    return dict(connect(mix_store).execute("SELECT domain, sum(n_bytes) FROM docs GROUP BY 1").fetchall())


@pytest.fixture
def make_spec():
    from tests.mixture._specs import spec_dict

    return spec_dict
