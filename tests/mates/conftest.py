"""MATES fixtures: a store of 320 real documents (8 domains), a tiny proxy LM, and one finished stage.

The reference set is the encyclopedic documents and the candidates are the other
seven domains, so probes differ in how much they help the target: the signal the
influence model must find. Torch runs on one thread (the machine is shared).
"""

from __future__ import annotations

import pytest
import torch

from curate.store import Store

SHAPE = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
PROXY = {"config": SHAPE, "tokens": 40_000, "seq_len": 128, "batch_size": 4, "lr": 3e-3, "threads": 1,
         "progress": False}
REFERENCE_SQL = "SELECT text FROM docs WHERE domain = 'encyclopedic'"
POOL_SQL = "SELECT doc_id, text, domain FROM docs WHERE domain <> 'encyclopedic'"
#: MiniLM reads one 64-token chunk per document: enough to tell domains apart, cheap on one core
INFLUENCE = {"chunk_tokens": 64, "max_chunks": 1}
#: half the candidates (~140) are the probe slice, the other half the pool, cut in two for two stages
STAGE = {"reference_sql": REFERENCE_SQL, "pool_sql": POOL_SQL, "probe_percent": 50, "pool_splits": 2,
         "influence_options": INFLUENCE}


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def mates_store(make_real_store) -> Store:
    from curate.lm.train import train_lm

    store = Store.open(make_real_store(80))
    train_lm(store, "proxy", **PROXY)
    return store


@pytest.fixture(scope="session")
def stage0(mates_store):
    """Stage 0 of run ``main`` from the saved proxy: every probe of the slice (~140)."""
    from curate.mates import MatesSelector

    return MatesSelector(mates_store, proxy="proxy", probes=200, **STAGE).select(stage=0)
