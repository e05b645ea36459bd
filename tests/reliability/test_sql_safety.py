"""`curate sql` is read-only: no user statement can change, add or delete a store file."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from curate import connect, ingest
from curate.cli import app
from curate.execute import run_scorer
from curate.readonly import ReadOnlyError, check_read_only, run_read_only
from scorers.registry import get_scorer
from tests.reliability.conftest import tree_hashes

runner = CliRunner()


@pytest.fixture(scope="module")
def scored_store(tmp_path_factory, real_docs) -> Path:
    from curate.embedded import write_jsonl

    d = tmp_path_factory.mktemp("sqlsafe")
    path = write_jsonl(d / "d.jsonl", [{"id": r["id"], "text": r["text"], "domain": r["domain"]} for r in real_docs[:60]],
                       raw_lines={3: b"{broken"})
    ingest([path], d / "store", "c", shard_rows=30, progress=False)
    run_scorer(d / "store", get_scorer("heuristics"), workers=0)
    return d / "store"


def _sql(store: Path, query: str, *extra: str):
    return runner.invoke(app, ["sql", query, "--store", str(store), *extra])


# statement -> (what the message names it, words the hint must carry)
FORBIDDEN = {
    "copy_into_store": ("COPY (SELECT * FROM docs) TO '{store}/shards/c/part-09999.parquet' (FORMAT parquet)",
                        "COPY", "--output FILE"),
    "copy_over_a_shard": ("COPY (SELECT * FROM docs LIMIT 1) TO '{store}/shards/c/part-00000.parquet' (FORMAT parquet)",
                          "COPY", "--output FILE"),
    "copy_elsewhere": ("COPY docs TO '{tmp}/out.csv'", "COPY", "--output FILE"),
    "drop_view": ("DROP VIEW docs", "DROP", "curate commands"),
    "replace_view": ("CREATE OR REPLACE VIEW heuristics AS SELECT 1 AS doc_id", "CREATE", "curate commands"),
    "create_table": ("CREATE TABLE t AS SELECT * FROM docs", "CREATE", "curate commands"),
    "insert": ("INSERT INTO docs SELECT * FROM docs", "INSERT", "curate commands"),
    "delete": ("DELETE FROM docs", "DELETE", "curate commands"),
    "attach_file_in_store": ("ATTACH '{store}/catalog.duckdb' AS cat", "ATTACH", "curate commands"),
    "export_database": ("EXPORT DATABASE '{store}/export'", "EXPORT", "--output FILE"),
    "set_config": ("SET lock_configuration = false", "SET", "curate commands"),
    "install_extension": ("INSTALL httpfs", "LOAD", "curate commands"),
    "pragma": ("PRAGMA enable_profiling", "PRAGMA", "curate commands"),
    "checkpoint": ("CHECKPOINT", "CALL", "curate commands"),
    "explain_analyze_copy": ("EXPLAIN ANALYZE COPY docs TO '{store}/x.csv'", "EXPLAIN", "curate commands"),
    "pivot_without_in": ("PIVOT docs ON domain USING count(*)", "MULTI", "IN (...)"),
}


@pytest.mark.parametrize("case", sorted(FORBIDDEN))
def test_forbidden_statement_is_refused_and_the_store_is_unchanged(case, scored_store, tmp_path):
    before = tree_hashes(scored_store)
    template, kind, hint = FORBIDDEN[case]
    query = template.format(store=scored_store, tmp=tmp_path)
    r = _sql(scored_store, query)
    assert r.exit_code == 2, r.output
    msg = " ".join(r.output.split())  # rich wraps long lines
    article = "an" if kind[0] in "AEIOU" else "a"
    assert f"curate sql is read-only: the statement is {article} {kind} (" in msg, msg
    assert "only queries run here (SELECT, WITH, FROM" in msg and "nothing was run" in msg
    assert hint in msg, msg
    assert "Traceback" not in r.output
    assert tree_hashes(scored_store) == before
    assert not (tmp_path / "out.csv").exists()


def test_a_bad_statement_after_a_good_one_runs_nothing(scored_store):
    before = tree_hashes(scored_store)
    r = _sql(scored_store, f"SELECT count(*) FROM docs; COPY docs TO '{scored_store}/shards/c/x.parquet'")
    assert r.exit_code == 2 and "statement 2 of 2 is a COPY" in " ".join(r.output.split())
    assert tree_hashes(scored_store) == before


def test_output_inside_the_store_is_refused(scored_store):
    before = tree_hashes(scored_store)
    target = scored_store / "features" / "heuristics" / "extra.parquet"
    r = _sql(scored_store, "SELECT doc_id FROM docs", "-f", "parquet", "-o", str(target))
    msg = " ".join(r.output.split())
    assert r.exit_code == 2 and "is inside the store" in msg and "choose a path outside it" in msg
    assert tree_hashes(scored_store) == before


def test_queries_still_read_everything(scored_store, tmp_path):
    labels = tmp_path / "labels.csv"  # the user's own file outside the store may be joined
    ids = [r[0] for r in connect(scored_store).execute("SELECT doc_id FROM docs ORDER BY doc_id LIMIT 5").fetchall()]
    labels.write_text("doc_id,label\n" + "".join(f"{i},good\n" for i in ids))
    for query in ("SELECT count(*) AS n FROM doc_features",
                  "WITH d AS (SELECT * FROM docs) SELECT count(*) AS n FROM d",
                  "FROM heuristics SELECT count(*) AS n",
                  f"SELECT count(*) AS n FROM docs JOIN read_csv('{labels}') USING (doc_id)",
                  "EXPLAIN ANALYZE SELECT count(*) AS n FROM docs"):
        r = _sql(scored_store, query, "-f", "json")
        assert r.exit_code == 0, (query, r.output)
    for query in ("DESCRIBE docs", "SUMMARIZE heuristics", "SHOW TABLES", "SELECT reason, count(*) FROM quarantine GROUP BY 1"):
        assert _sql(scored_store, query).exit_code == 0, query
    r = _sql(scored_store, f"SELECT count(*) AS n FROM docs JOIN read_csv('{labels}') USING (doc_id)", "-f", "json")
    assert json.loads(r.output) == {"n": 5}
    out = tmp_path / "o.json"
    assert _sql(scored_store, "SELECT doc_id FROM docs", "-f", "json", "-o", str(out)).exit_code == 0
    assert len(out.read_text().splitlines()) == 60


def test_python_api_read_only_connection(scored_store):
    con = connect(scored_store, read_only=True)
    with pytest.raises(ReadOnlyError, match="is a DROP"):
        run_read_only(con, "DROP VIEW docs")
    with pytest.raises(duckdb.Error, match="configuration has been locked"):
        con.execute("SET lock_configuration = false")  # even run directly, the settings stay put
    assert run_read_only(con, "SELECT count(*) FROM docs").fetchall() == [(60,)]
    with pytest.raises(duckdb.ParserException, match="syntax error"):
        check_read_only("SELEC 1")
    with pytest.raises(ReadOnlyError, match="no SQL statement given"):
        check_read_only("-- just a comment")
