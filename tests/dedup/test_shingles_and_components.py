"""Shingles (normalisation, short documents), exact Jaccard, connected components, MinHash settings."""

from __future__ import annotations

import random

import networkx as nx
import numpy as np
import pyarrow as pa
import pytest

from curate.dedup.components import components
from curate.dedup.minhash import MinHashSettings, band_hashes, signatures
from curate.dedup.shingles import jaccard, shingle_hashes
from curate.errors import ConfigError


def sets(*texts: str, n: int = 5) -> list[np.ndarray]:
    sh = shingle_hashes(pa.array(list(texts)), n)
    return [sh.of(i) for i in range(len(texts))]


def test_case_punctuation_and_unicode_forms_do_not_matter():
    a, b, c = sets("The quick brown fox jumps over the lazy dog.",
                   "the QUICK — brown fox, jumps over\tthe lazy dog!!",
                   "ｔｈｅ quick brown fox jumps over the lazy dog")  # fullwidth letters: NFKC folds them
    assert len(a) == 5 and np.array_equal(a, b) and np.array_equal(a, c)


def test_word_order_matters_and_short_or_empty_documents():
    a, b = sets("one two three four five six", "six five four three two one")
    assert jaccard(a, b) == 0.0
    short, empty, blank = sets("just three words", "", " ... !! ")
    assert len(short) == 1 and len(empty) == 0 and len(blank) == 0
    assert shingle_hashes(pa.array(["a b c", "a b c d e f g"]), 5).counts().tolist() == [1, 3]


def test_jaccard_is_exact_on_known_overlap():
    words = [f"w{i}" for i in range(104)]  # 100 shingles
    a, b = sets(" ".join(words), " ".join(words[50:]))  # the second half: 50 shingles, all shared
    assert jaccard(a, b) == pytest.approx(50 / 100)


def test_components_match_networkx_on_random_graphs():
    rng = random.Random(0)
    for n, m in ((50, 30), (500, 450), (2000, 1990)):
        a = np.array([rng.randrange(n) for _ in range(m)])
        b = np.array([rng.randrange(n) for _ in range(m)])
        label = components(n, a, b)
        g = nx.Graph()
        g.add_nodes_from(range(n))
        g.add_edges_from(zip(a.tolist(), b.tolist()))
        for comp in nx.connected_components(g):
            members = sorted(comp)
            assert set(label[members].tolist()) == {members[0]}  # one label: the smallest node


def test_a_long_chain_is_one_component():
    n = 10_000
    order = np.random.default_rng(1).permutation(n)
    label = components(n, order[:-1], order[1:])
    assert (label == 0).all()


def test_settings_that_do_not_multiply_are_refused_naming_them():
    with pytest.raises(ConfigError, match=r"hashes=100 is not bands × rows = 14 × 8"):
        MinHashSettings(bands=14, rows=8, hashes=100)
    with pytest.raises(ConfigError, match="minhash rows must be a positive integer"):
        MinHashSettings(rows=0)


def test_signature_agreement_estimates_jaccard_and_bands_follow_it():
    words = [f"w{i}" for i in range(404)]
    text = pa.array([" ".join(words), " ".join(words[:300]), " ".join(words)])  # 400 vs 296 shingles: J = 0.74
    s = MinHashSettings()
    sig, counts = signatures(text, s)
    assert counts.tolist() == [400, 296, 400]
    assert (sig[0] == sig[2]).all()
    assert abs((sig[0] == sig[1]).mean() - 296 / 400) < 0.15
    bands = band_hashes(sig, s)
    assert bands.shape == (3, 14) and (bands[0] == bands[2]).all()
    assert s.candidate_probability(0.8) == pytest.approx(0.9235, abs=1e-3)
