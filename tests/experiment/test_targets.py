"""Targets and the pool/target overlap check: planted near-copies are found and excluded, targets are checked."""

from __future__ import annotations

import pytest

from curate import ingest
from curate.embedded import write_jsonl
from curate.errors import ConfigError
from curate.experiment.overlap import find_overlap
from curate.experiment.targets import BUILTIN, parse_targets, target_names
from curate.query import connect


@pytest.fixture(scope="module")
def planted(tmp_path_factory, real_docs):
    """A pool (corpus demo) holding three altered copies of held-out documents, and the held-out corpus."""
    tmp = tmp_path_factory.mktemp("planted")
    held = [d for d in real_docs if len(d["text"].split()) > 200][:40]
    pool = [d for d in real_docs if d not in held][:120]
    copies = []
    for i, d in enumerate(held[:3]):
        words = d["text"].split()
        words[10] = "CHANGED"  # a near-copy: one word different, the rest the same
        copies.append({"id": f"copy-{i}", "text": " ".join(words) + " trailing words of a resent mail",
                       "domain": d["domain"]})
    store = tmp / "store"
    ingest([write_jsonl(tmp / "pool.jsonl", [{"id": d["id"], "text": d["text"], "domain": d["domain"]}
                                              for d in pool] + copies)], store, "demo", progress=False)
    ingest([write_jsonl(tmp / "held.jsonl", [{"id": d["id"], "text": d["text"], "domain": d["domain"]}
                                              for d in held])], store, "heldout", progress=False)
    return connect(store), held


def test_planted_near_copies_are_found_and_nothing_else(planted):
    con, held = planted
    found = find_overlap(con, "SELECT doc_id, text FROM docs WHERE corpus = 'demo'",
                         "SELECT doc_id, text FROM docs WHERE corpus = 'heldout'")
    copies = {r[0] for r in con.sql("SELECT doc_id FROM docs WHERE orig_id LIKE 'copy-%'").fetchall()}
    assert set(found.excluded) == copies
    originals = {r[0] for r in con.sql("SELECT doc_id FROM docs WHERE corpus = 'heldout' AND orig_id IN "
                                       f"({', '.join(repr(d['id']) for d in held[:3])})").fetchall()}
    assert set(found.target_hit) == originals
    assert all(j > 0.9 for j in found.pairs.column("jaccard").to_pylist())
    assert found.summary() == {"pairs": 3, "pool_docs_excluded": 3, "target_docs_with_a_copy": 3}


def test_targets_are_checked_against_the_store(planted):
    con, _ = planted
    assert target_names(None) == list(BUILTIN)
    with pytest.raises(ConfigError, match=r"unknown target 'nope'.*corpus:NAME"):
        target_names("mixed,nope")
    with pytest.raises(ConfigError, match="listed twice"):
        target_names(["prose", "prose"])
    mixed, = parse_targets(con, "mixed", "demo")
    assert mixed.domains is None and con.execute(f"SELECT count(*) FROM ({mixed.sql})").fetchall()[0][0] == 40
    halves = [con.execute(f"SELECT count(*) FROM ({mixed.half(i)})").fetchall()[0][0] for i in (0, 1)]
    assert sum(halves) == 40 and min(halves) > 5  # an evaluation half and a reference half
    with pytest.raises(ConfigError, match="in the pool corpus 'demo'"):
        parse_targets(con, "corpus:demo", "demo")
    with pytest.raises(ConfigError, match="has 0 document"):
        parse_targets(con, "corpus:missing", "demo")
    with pytest.raises(ConfigError, match="query failed"):
        parse_targets(con, "sql:SELECT nope FROM docs", "demo")
    custom, = parse_targets(con, "sql:SELECT doc_id FROM docs WHERE corpus = 'heldout'", "demo")
    assert custom.name.startswith("sql-") and custom.sql.startswith("SELECT doc_id")
