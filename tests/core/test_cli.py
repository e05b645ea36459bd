"""The CLI as a user meets it: help, ingest, stats, sql output formats, errors with exit code 2."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
from typer.testing import CliRunner

from curate.cli import app

runner = CliRunner()


def test_help_explains_every_command():
    out = runner.invoke(app, ["--help"]).output
    for cmd in ("ingest", "stats", "sql", "score", "train-domain", "flows", "demo"):
        assert cmd in out
    ingest_help = runner.invoke(app, ["ingest", "--help"]).output
    assert "--text-field" in ingest_help and "quarantine" in ingest_help


def test_ingest_stats_and_sql(tmp_path, real_docs, write_jsonl):
    store = tmp_path / "s"
    path = write_jsonl(tmp_path / "d.jsonl", real_docs[:30], raw_lines={5: b"{broken"})
    r = runner.invoke(app, ["ingest", str(path), "--store", str(store), "--corpus", "c"])
    assert r.exit_code == 0, r.output
    assert "read 31 = kept 30 + quarantined 1 + duplicates 0" in r.output
    assert "malformed_json" in r.output
    r = runner.invoke(app, ["ingest", str(path), "--store", str(store), "--corpus", "c"])
    assert "already ingested" in r.output
    r = runner.invoke(app, ["stats", "--store", str(store)])
    assert r.exit_code == 0 and "documents per domain" in r.output and "malformed_json" in r.output

    r = runner.invoke(app, ["sql", "SELECT domain, count(*) AS n FROM docs GROUP BY 1 ORDER BY 1", "-s", str(store), "-f", "csv"])
    assert r.exit_code == 0 and r.output.splitlines()[0] == "domain,n"
    r = runner.invoke(app, ["sql", "SELECT count(*) AS n FROM docs", "-s", str(store), "-f", "json"])
    assert json.loads(r.output.strip()) == {"n": 30}
    out = tmp_path / "o.parquet"
    r = runner.invoke(app, ["sql", "SELECT doc_id, n_bytes FROM docs", "-s", str(store), "-f", "parquet", "-o", str(out)])
    assert r.exit_code == 0 and pq.read_table(out).num_rows == 30
    out_json = tmp_path / "o.json"
    r = runner.invoke(app, ["sql", "SELECT doc_id FROM docs", "-s", str(store), "-f", "json", "-o", str(out_json)])
    assert r.exit_code == 0 and len(out_json.read_text().splitlines()) == 30
    r = runner.invoke(app, ["sql", "--views", "-s", str(store)])
    assert "CREATE OR REPLACE VIEW doc_features" in r.output


def test_errors_are_one_clear_line_with_exit_code_2(tmp_path, real_docs, write_jsonl):
    r = runner.invoke(app, ["stats", "--store", str(tmp_path / "none")])
    assert r.exit_code == 2 and "no curate store" in r.output and "Traceback" not in r.output
    path = write_jsonl(tmp_path / "d.jsonl", real_docs[:3])
    r = runner.invoke(app, ["ingest", str(path), "--store", str(tmp_path / "s"), "--shard-rows", "0"])
    assert r.exit_code == 2 and "shard_rows must be a positive integer" in r.output
    runner.invoke(app, ["ingest", str(path), "--store", str(tmp_path / "s")])
    r = runner.invoke(app, ["sql", "SELECT nope FROM docs", "--store", str(tmp_path / "s")])
    assert r.exit_code == 2 and "DuckDB refused the query" in r.output
    r = runner.invoke(app, ["sql", "SELECT 1", "--store", str(tmp_path / "s"), "-f", "parquet"])
    assert r.exit_code == 2 and "--output" in r.output


def test_flows_options_are_checked_before_anything_is_registered(tmp_path):
    """Schedules and --param overrides are refused with one line (exit 2) before any deployment reaches Prefect."""
    import flows.deployments  # noqa: F401  Prefect sets up its log handlers at import: on the real stdout, not the runner's
    base = ["flows", "serve", "--store", str(tmp_path / "st")]
    cases = {
        ("--cron", "0 * * * *", "--interval", "60"): "either --cron or --interval, not both",
        ("--cron", "every hour"): "is not a cron expression",
        ("--interval", "0.5"): "--interval must be at least 1 second",
        ("--param", "nope.x=1"): "no deployment curate-nope here",
        ("--param", "score.scorerz=[]"): "the score flow takes no parameter 'scorerz'",
        ("--param", "score"): "expected deployment.key=value",
        ("--mixture", str(tmp_path / "missing.yaml")): "missing.yaml",
    }
    for args, message in cases.items():
        for command in (base, ["flows", "deploy", "--pool", "p", *base[2:]]):
            r = runner.invoke(app, [*command, *args])
            assert r.exit_code == 2 and message in " ".join(r.output.split()), (args, r.output)
    deploy_help = " ".join(runner.invoke(app, ["flows", "deploy", "--help"]).output.split())
    assert "--input" in deploy_help and "--corpus" in deploy_help and "--interval" in deploy_help
