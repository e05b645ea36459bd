"""Training windows: uniform by byte position over the kept documents, seeded per component, paired prefixes."""

from __future__ import annotations

import numpy as np
import pytest

from curate.errors import ConfigError
from curate.experiment.windows import Component, Phase, draw_windows, split_counts
from curate.lm.tokenizer import EOS_ID
from curate.query import connect

POOL = "corpus = 'c'"
ALL = "SELECT doc_id FROM docs WHERE corpus = 'c'"


@pytest.fixture(scope="module")
def con(make_real_store):
    return connect(make_real_store(80))


def test_split_counts_is_exact_and_proportional():
    assert split_counts(10, [1, 1, 1]) == [4, 3, 3]
    assert split_counts(100, [0.8, 0.2]) == [80, 20]
    assert sum(split_counts(997, [0.13, 0.5, 0.37])) == 997
    with pytest.raises(ConfigError, match="non-negative"):
        split_counts(5, [0, 0])


def test_windows_are_real_text_of_the_kept_documents(con):
    math_only = ALL + " AND domain = 'math'"
    d = draw_windows(con, [Phase("main", 1.0, (Component(math_only, 1.0, "m"),))], 200, 64, seed=0, pool_where=POOL)
    assert d.windows.shape == (200, 64) and d.windows.dtype == np.uint16 and d.tokens == 200 * 64
    assert d.domain_tokens == {"main": {"math": 200 * 64}}
    text = b"".join(t.encode() + b"\xff" for (t,) in
                    con.sql(math_only.replace("doc_id", "text") + " ORDER BY doc_id").fetchall())
    stream = text.replace(b"\xff", bytes([0]))  # stand-in for EOS while searching bytes
    for w in d.windows[:50]:
        piece = bytes(0 if x == EOS_ID else int(x) for x in w)
        assert piece in stream + stream[:64]  # a window is a contiguous span of the documents laid end to end
    supply = con.execute(f"SELECT sum(n_bytes + 1) FROM ({math_only.replace('doc_id', 'n_bytes')})").fetchall()[0][0]
    assert d.supply["main/m"] == supply


def test_same_seed_same_windows_and_a_longer_draw_extends_a_shorter_one(con):
    one = [Phase("main", 1.0, (Component(ALL, 1.0, "pool"),))]
    a = draw_windows(con, one, 300, 32, seed=3, pool_where=POOL)
    b = draw_windows(con, one, 300, 32, seed=3, pool_where=POOL)
    c = draw_windows(con, one, 120, 32, seed=3, pool_where=POOL)
    other = draw_windows(con, one, 300, 32, seed=4, pool_where=POOL)
    assert (a.windows == b.windows).all() and (a.windows[:120] == c.windows).all()
    assert not (a.windows == other.windows).all()


def test_a_last_phase_changes_only_the_tail(con):
    """Two-phase = random with its last phase replaced: the first windows are random's own (paired runs)."""
    plain = draw_windows(con, [Phase("main", 1.0, (Component(ALL, 1.0, "pool"),))], 100, 32, seed=1, pool_where=POOL)
    two = [Phase("main", 0.8, (Component(ALL, 1.0, "pool"),)),
           Phase("anneal", 0.2, (Component(ALL + " AND domain = 'math'", 0.5, "math"),
                                 Component(ALL + " AND domain = 'code'", 0.5, "code")))]
    d = draw_windows(con, two, 100, 32, seed=1, pool_where=POOL)
    assert (d.windows[:80] == plain.windows[:80]).all() and list(d.phase[78:82]) == [0, 0, 1, 1]
    assert d.domain_tokens["anneal"] == {"code": 10 * 32, "math": 10 * 32}


def test_excluded_documents_are_never_drawn(con):
    keep_one = "SELECT doc_id FROM docs WHERE corpus = 'c' AND domain = 'math'"
    everything_but = "SELECT doc_id FROM docs WHERE corpus = 'c' AND domain <> 'math'"
    d = draw_windows(con, [Phase("main", 1.0, (Component(ALL, 1.0, "pool"),))], 300, 32, seed=0, pool_where=POOL,
                     exclude=everything_but)
    assert set(d.domain_tokens["main"]) == {"math"}
    with pytest.raises(ConfigError, match="keeps no text"):
        draw_windows(con, [Phase("main", 1.0, (Component(keep_one, 1.0, "m"),))], 10, 32, seed=0, pool_where=POOL,
                     exclude=ALL)
