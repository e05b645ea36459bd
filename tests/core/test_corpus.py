"""The embedded corpus meets its contract: real, multi-domain, licensed, clean, with a disjoint held-out split."""

from __future__ import annotations

import re

import pyarrow.compute as pc
import pyarrow.parquet as pq

REGISTRY_HOST = re.compile(r"\b(?:[\w-]+\.)*(?:pypi|pythonhosted|npmjs|yarnpkg)\.(?:org|com|io)\b|\bdebian\.(?:org|net)\b")


def test_shape_domains_and_provenance(corpus_paths):
    train = pq.read_table(corpus_paths["train"])
    held = pq.read_table(corpus_paths["heldout"])
    assert train.schema.names == held.schema.names == ["id", "text", "domain", "source", "license", "url", "title"]
    assert train.num_rows + held.num_rows >= 20_000
    domains = set(train.column("domain").to_pylist())
    assert len(domains) >= 6
    assert set(held.column("domain").to_pylist()) == domains
    for t in (train, held):
        for col in ("id", "text", "domain", "source", "license", "url"):
            assert t.column(col).null_count == 0, col
    assert not set(train.column("id").to_pylist()) & set(held.column("id").to_pylist())
    assert sum(p.stat().st_size for p in corpus_paths.values()) < 40 << 20


def test_text_is_clean(corpus_paths):
    for path in corpus_paths.values():
        text = pq.read_table(path, columns=["text"]).column("text")
        assert not pc.any(pc.match_substring(text, "\x00")).as_py()
        assert pc.min(pc.utf8_length(text)).as_py() >= 200
        assert not pc.any(pc.match_substring_regex(text, REGISTRY_HOST.pattern)).as_py()
