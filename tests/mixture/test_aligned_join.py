"""Planning joins feature tables by position when their files align with the shards, and gives the same plan."""

from __future__ import annotations

import shutil

import pytest

from curate import connect, query
from curate.execute import run_scorer
from curate.mixture import load_spec, plan_mixture
from curate.store import Store
from scorers.heuristics import HeuristicsScorer
from tests.mixture._specs import spec_dict

WHERE = ["alpha_ratio >= 0.5", "dup_line_frac <= 0.5"]


@pytest.fixture(scope="module")
def scored(tmp_path_factory, make_real_store) -> Store:
    st = Store.open(make_real_store(shard_rows=50))  # 320 docs in 7 shards: the join spans files
    run_scorer(st, HeuristicsScorer(), workers=0, progress=False)
    return st


def _plan(st: Store) -> tuple[list, list]:
    spec = load_spec(spec_dict(where=WHERE, max_epochs=3))
    plan = plan_mixture(st, spec)
    return plan.table(), plan.con.execute(plan.ordered_sql()).fetchall()


def test_aligned_files_give_a_positional_join_and_the_same_plan(scored, monkeypatch):
    con = connect(scored)
    assert "POSITIONAL JOIN" in query.narrow_doc_features(con, scored, *WHERE)
    sql = query.narrow_doc_features(con, scored, *WHERE)
    positional = con.execute(f"SELECT doc_id, alpha_ratio, dup_line_frac FROM {sql} ORDER BY doc_id").fetchall()
    cells, uses = _plan(scored)
    monkeypatch.setattr(query, "_aligned_files", lambda *_a: None)  # the join on doc_id
    sql = query.narrow_doc_features(con, scored, *WHERE)
    assert "POSITIONAL" not in sql
    joined = con.execute(f"SELECT doc_id, alpha_ratio, dup_line_frac FROM {sql} ORDER BY doc_id").fetchall()
    assert positional == joined and len(joined) == 320
    assert _plan(scored) == (cells, uses) and uses


def test_a_missing_or_foreign_feature_file_falls_back_to_the_id_join(scored, tmp_path):
    st = Store.open(shutil.copytree(scored.root, tmp_path / "copy"))
    files = st.list_files("features/heuristics")
    con = connect(st)
    (tmp_path / "copy" / files[1]).replace(tmp_path / "moved.parquet")  # one shard not scored
    assert "POSITIONAL" not in query.narrow_doc_features(connect(st), st, *WHERE)
    # another shard's features under this shard's name: same schema, wrong documents
    shutil.copy(tmp_path / "copy" / files[2], tmp_path / "copy" / files[1])
    con = connect(st)
    assert "POSITIONAL" not in query.narrow_doc_features(con, st, *WHERE)
    docs = con.execute(f"SELECT count(DISTINCT doc_id) FROM {query.narrow_doc_features(con, st, *WHERE)}").fetchone()
    assert docs == (320,)


def _view_sql(con) -> str:
    return con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'doc_features'").fetchall()[0][0]


def test_connect_gives_sql_users_the_positional_doc_features_with_the_same_rows(scored, tmp_path):
    con = connect(scored)
    assert "POSITIONAL JOIN" in _view_sql(con)
    every = "SELECT * FROM doc_features ORDER BY doc_id"
    positional = con.execute(every).fetchall()
    con.execute(query.views_sql(scored))  # the id-join definitions, as curate sql --views prints them
    assert "POSITIONAL" not in _view_sql(con)
    assert con.execute(every).fetchall() == positional and len(positional) == 320
    # a shard without its feature file: connect falls back to the id join (the shard's documents get NULLs)
    st = Store.open(shutil.copytree(scored.root, tmp_path / "copy"))
    (tmp_path / "copy" / st.list_files("features/heuristics")[1]).unlink()
    con = connect(st)
    assert "POSITIONAL" not in _view_sql(con)
    assert con.execute("SELECT count(*), count(alpha_ratio) FROM doc_features").fetchone() == (320, 270)
