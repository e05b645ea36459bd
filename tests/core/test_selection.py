"""Percentile bands per domain: exact counts, the right end of each domain, and the shipped SQL runs as is."""

from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate import connect
from curate.errors import ConfigError
from curate.query import SQL_DIR
from curate.selection import band_bounds, band_doc_ids, band_sql, percentile_band


@pytest.fixture(scope="module")
def scored_store(make_real_store):
    """Real docs plus a fake `perplexity` feature table (ppl = a known function of position)."""
    store = make_real_store(100)
    ids = [r[0] for r in connect(store).execute("SELECT doc_id FROM docs ORDER BY doc_id").fetchall()]
    feats = store / "features" / "perplexity"
    feats.mkdir(parents=True)
    # distinct values so every band is unambiguous; doc i gets ppl 10 + i
    pq.write_table(pa.table({"doc_id": ids, "ppl": pa.array([10.0 + i for i in range(len(ids))], pa.float32())}),
                   feats / "part-00000.parquet")
    return store


@pytest.mark.parametrize("keep,fraction", [("middle", 0.5), ("low", 0.3), ("high", 0.25), ("high", 1.0)])
def test_band_keeps_expected_count_per_domain(scored_store, keep, fraction):
    lo, hi = band_bounds(keep, fraction)
    rows = percentile_band(scored_store, "ppl", keep=keep, fraction=fraction).fetchall()
    per_domain: dict[str, list[float]] = {}
    for _doc, domain, _n_bytes, score, _pct in rows:
        per_domain.setdefault(domain, []).append(score)
    assert len(per_domain) == 8
    con = connect(scored_store)
    for domain, kept in per_domain.items():
        all_scores = sorted(r[0] for r in con.execute(
            "SELECT ppl FROM doc_features WHERE domain = ?", [domain]).fetchall())
        n = len(all_scores)
        assert n == 40
        assert len(kept) == math.floor(hi * n) - math.floor(lo * n)
        # exactly the right slice of the domain's sorted scores
        assert sorted(kept) == all_scores[math.floor(lo * n): math.floor(hi * n)]


def test_band_over_the_whole_pool_and_where(scored_store):
    ids = band_doc_ids(scored_store, "ppl", keep="low", fraction=0.1, per=None)
    assert len(ids) == 32  # 10% of 320, one group
    code = band_doc_ids(scored_store, "ppl", keep="middle", fraction=0.5, where="domain = 'code'")
    assert len(code) == 20


def test_shipped_sql_runs_and_matches_the_function(scored_store):
    con = connect(scored_store)
    from_file = con.sql((SQL_DIR / "perplexity_band.sql").read_text()).fetchall()
    from_fn = percentile_band(con, "ppl", keep="middle", fraction=0.5).fetchall()
    assert len(from_file) == 8 * 20
    assert from_file == from_fn
    # one template: the function reuses the file's ranking and cut logic verbatim
    body = (SQL_DIR / "perplexity_band.sql").read_text().split("ranked AS (", 1)[1]
    assert band_sql("ppl").endswith(body)


def test_bad_arguments_are_refused():
    with pytest.raises(ConfigError):
        band_bounds("top", 0.5)
    with pytest.raises(ConfigError):
        band_bounds("low", 0)
    with pytest.raises(ConfigError, match="plain column"):
        band_sql("ppl; DROP TABLE x")
