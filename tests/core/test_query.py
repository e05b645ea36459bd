"""DuckDB views: docs, quarantine, feature tables, doc_features — from Python and from sql/views.sql."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate import connect, ingest
from curate.errors import CurateError
from curate.query import SQL_DIR, views_sql
from curate.store import Store


@pytest.fixture
def store_with_features(tmp_path, real_docs, write_jsonl) -> Path:
    store = tmp_path / "store"
    ingest([write_jsonl(tmp_path / "d.jsonl", real_docs[:40] + [{"text": 1}])], store, "c")
    ids = [r[0] for r in connect(store).execute("SELECT doc_id FROM docs ORDER BY doc_id").fetchall()]
    for table, cols in {"alpha": {"score": [0.5] * len(ids)}, "beta": {"score": [1.0] * len(ids), "flag": [True] * len(ids)}}.items():
        d = store / "features" / table
        d.mkdir(parents=True)
        pq.write_table(pa.table({"doc_id": ids, **cols}), d / "c--part-00000.parquet")
    return store


def test_views_and_doc_features_join_on_doc_id(store_with_features):
    con = connect(store_with_features)
    assert con.execute("SELECT count(*) FROM docs").fetchone()[0] == 40
    assert con.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 1
    cols = [c[0] for c in con.execute("DESCRIBE doc_features").fetchall()]
    # a column name two tables share is kept for the first and prefixed for the next
    assert {"score", "beta_score", "flag", "text", "domain"} <= set(cols)
    row = con.execute("SELECT count(*), min(score), min(beta_score) FROM doc_features").fetchone()
    assert row == (40, 0.5, 1.0)


def test_a_feature_table_committed_after_connect_is_left_out_not_an_error(store_with_features):
    """A scorer's first file lands between connect() and a query (a scheduled report beside a MATES stage)."""
    from curate.query import narrow_doc_features

    con = connect(store_with_features)
    ids = [r[0] for r in con.execute("SELECT doc_id FROM docs").fetchall()]
    late = store_with_features / "features" / "late"
    late.mkdir()
    pq.write_table(pa.table({"doc_id": ids, "late_score": [2.0] * len(ids)}), late / "c--part-00000.parquet")
    sub = narrow_doc_features(con, Store.open(store_with_features), "score > 0 AND late_score > 1")
    assert con.execute(f"SELECT count(*) FROM {sub} WHERE score > 0").fetchone()[0] == 40
    assert "late" not in sub  # not joined: this connection has no view of it yet
    fresh = connect(store_with_features)  # a new connection sees it
    assert fresh.execute("SELECT count(*) FROM doc_features WHERE late_score > 1").fetchone()[0] == 40


def test_sql_views_file_works_from_the_duckdb_api_alone(store_with_features):
    con = duckdb.connect()
    con.execute("SET file_search_path = ?", [str(store_with_features)])
    con.execute((SQL_DIR / "views.sql").read_text())
    assert con.execute("SELECT count(*) FROM docs").fetchone()[0] == 40
    full = duckdb.connect()
    full.execute("SET file_search_path = ?", [str(store_with_features)])
    full.execute(views_sql(Store.open(store_with_features)))
    assert full.execute("SELECT count(*) FROM doc_features WHERE flag").fetchone()[0] == 40


@pytest.mark.parametrize("name", ["domain_totals.sql", "quarantine_report.sql"])
def test_shipped_queries_run_as_they_are(store_with_features, name):
    rows = connect(store_with_features).execute((SQL_DIR / name).read_text()).fetchall()
    assert rows


def test_connect_on_empty_store_says_what_to_do(tmp_path):
    Store.open(tmp_path / "s", create=True)
    with pytest.raises(CurateError, match="curate ingest"):
        connect(tmp_path / "s")
