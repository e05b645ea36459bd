"""The token stream's documents: long ones copied into place one by one, short ones by np.insert, same ids."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from curate.mixture import stream


@pytest.mark.parametrize("mean", [3000, 20])
def test_both_ways_of_placing_documents_give_the_same_stream(monkeypatch, mean):
    rng = np.random.default_rng(mean)
    sizes = rng.integers(0, 2 * mean + 1, 40)
    texts = pa.array(["".join(chr(97 + x) for x in rng.integers(0, 26, n)) for n in sizes], pa.large_string())
    ids = pa.array([rng.integers(0, 50_000, n).tolist() for n in sizes], pa.large_list(pa.int32()))
    for col, dtype, eos in ((texts.slice(3), np.dtype(np.uint16), 256), (ids.slice(3), np.dtype(np.int32), 7)):
        got = {}
        for way, threshold in (("loop", 0), ("insert", 10**9)):
            monkeypatch.setattr(stream, "LOOP_MIN_MEAN", threshold)
            got[way] = stream.document_tokens(col, eos, dtype)
        (a, la), (b, lb) = got["loop"], got["insert"]
        assert a.dtype == b.dtype == dtype and np.array_equal(a, b) and np.array_equal(la, lb)
        assert np.array_equal(la, sizes[3:] + 1) and np.array_equal(a[np.cumsum(la) - 1], np.full(len(la), eos))
