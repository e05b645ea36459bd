"""Near-duplicate clusters end to end on real text: planted copies at known similarity, keep rules, the
near_dup table beside every shard, re-runs, a new corpus, shipped SQL, the CLI and its refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from curate import ingest
from curate.cli import app
from curate.dedup.cluster import SUMMARY, ClusterSettings, cluster_near_duplicates
from curate.dedup.minhash import MinHashSettings
from curate.dedup.planted import plant
from curate.embedded import write_jsonl as write_jsonl_file
from curate.errors import ConfigError
from curate.execute import run_scorer
from curate.query import SQL_DIR, connect
from scorers.minhash import MinHashScorer

LEVELS = [0.9, 0.85, 0.5, 0.3]
PER_LEVEL = 100


@pytest.fixture(scope="module")
def originals(corpus_paths) -> list[str]:
    """Long real prose documents from the embedded pool, none a near-copy of another (checked below)."""
    table = pq.read_table(corpus_paths["train"], columns=["text", "domain"])
    keep = pc.and_(pc.is_in(table.column("domain"), pa.array(["books", "encyclopedic", "forum", "docs"])),
                   pc.and_(pc.greater(pc.utf8_length(table.column("text")), 3000),
                           pc.less(pc.utf8_length(table.column("text")), 20000)))
    texts = table.filter(keep).column("text").to_pylist()
    return texts[: PER_LEVEL * len(LEVELS)]


@pytest.fixture(scope="module")
def planted_store(tmp_path_factory, originals):
    """Originals and one planted copy of each, hashed through the engine."""
    tmp = tmp_path_factory.mktemp("planted")
    pairs = plant(originals, LEVELS, per_target=PER_LEVEL, seed=0)
    records = [{"id": f"o{i}", "text": t} for i, t in enumerate(originals)]
    records += [{"id": f"c{k}", "text": p.text} for k, p in enumerate(pairs)]
    ingest([write_jsonl_file(tmp / "in.jsonl", records)], tmp / "store", "planted", shard_rows=300, progress=False)
    report = run_scorer(tmp / "store", MinHashScorer(), workers=0)
    assert report.done == 3 and not report.failed
    return tmp / "store", pairs


def detection(store: Path, pairs) -> dict[float, float]:
    con = connect(store)
    cluster = dict(con.sql("SELECT orig_id, coalesce(dup_cluster_id, -1) FROM doc_features").fetchall())
    out = {}
    for level in LEVELS:
        hits = [cluster[f"o{p.original}"] >= 0 and cluster[f"o{p.original}"] == cluster[f"c{k}"]
                for k, p in enumerate(pairs) if p.target == level]
        out[level] = float(np.mean(hits))
    return out


def test_planted_copies_are_found_as_the_lsh_curve_says(planted_store):
    store, pairs = planted_store
    measured = {lv: np.mean([p.similarity for p in pairs if p.target == lv]) for lv in LEVELS}
    assert all(abs(measured[lv] - lv) < 0.01 for lv in LEVELS)  # the planting hit its targets
    cluster_near_duplicates(store, ClusterSettings())
    found = detection(store, pairs)
    theory = MinHashSettings().candidate_probability
    assert found[0.9] >= 0.95 and found[0.85] >= 0.95  # the goal: >= 0.95 at s >= 0.85
    assert found[0.5] <= theory(0.5) + 0.08  # 5% in theory; 100 pairs: binomial slack
    assert found[0.3] <= 0.02
    # with verification no pair at s <= 0.5 is merged, and the high-similarity pairs stay
    cluster_near_duplicates(store, ClusterSettings(verify=True, min_jaccard=0.6))
    verified = detection(store, pairs)
    assert verified[0.5] == 0 and verified[0.3] == 0
    assert verified[0.9] == found[0.9] and verified[0.85] == found[0.85]


def test_near_dup_rows_follow_each_shard_and_keep_the_longest(planted_store):
    store, pairs = planted_store
    cluster_near_duplicates(store, ClusterSettings(verify=True))
    con = connect(store)
    for shard in sorted((store / "shards" / "planted").glob("*.parquet")):
        ids = pq.read_table(shard, columns=["doc_id"]).column("doc_id")
        near = pq.read_table(store / "features" / "near_dup" / f"planted--{shard.name}")
        assert near.column("doc_id").equals(ids)  # aligned row by row, as the positional join needs
    rows = con.sql("""SELECT dup_cluster_id, count(*) AS n, any_value(dup_cluster_size) AS size,
                             count(*) FILTER (WHERE dup_keep) AS kept,
                             arg_max(doc_id, length(text)) AS longest, any_value(dup_kept_doc_id) AS kept_id
                      FROM doc_features WHERE dup_cluster_id IS NOT NULL GROUP BY 1""").fetchall()
    assert rows and all(n == size and kept == 1 and longest == kept_id for _, n, size, kept, longest, kept_id in rows)
    alone = con.sql("SELECT bool_and(dup_keep AND dup_cluster_size = 1 AND dup_kept_doc_id = doc_id) "
                    "FROM doc_features WHERE dup_cluster_id IS NULL").fetchall()[0][0]
    assert alone
    kept = con.execute((SQL_DIR / "dedup_near.sql").read_text()).fetchall()
    removable = con.sql("SELECT count(*) FROM doc_features WHERE NOT dup_keep").fetchall()[0][0]
    assert len(kept) == 2 * len(pairs) - removable > 0
    top = con.execute((SQL_DIR / "near_dup_clusters.sql").read_text()).fetchall()
    assert top and top[0][1] >= 2 and top[0][4] and top[0][5]  # size, kept and removed openings


def test_keep_order_by_sql_and_refusals_before_any_work(planted_store, tmp_path):
    store, _ = planted_store
    s = cluster_near_duplicates(store, ClusterSettings(verify=True, keep_order="length(text) ASC, doc_id"))
    con = connect(store)
    bad = con.sql("""SELECT count(*) FROM (SELECT dup_cluster_id, arg_min(doc_id, length(text)) AS shortest,
                                                  any_value(dup_kept_doc_id) AS kept
                                           FROM doc_features WHERE dup_cluster_id IS NOT NULL GROUP BY 1)
                     WHERE shortest <> kept""").fetchall()[0][0]
    assert s.clusters > 0 and bad == 0
    before = json.loads((store / SUMMARY).read_text())
    with pytest.raises(ConfigError, match="keep_order 'no_such_column DESC' does not bind"):
        cluster_near_duplicates(store, ClusterSettings(keep_order="no_such_column DESC"))
    assert json.loads((store / SUMMARY).read_text()) == before  # nothing rewritten
    with pytest.raises(ConfigError, match="min_jaccard must be in"):
        ClusterSettings(min_jaccard=1.5)
    empty = tmp_path / "nohash"
    shutil.copytree(store, empty, ignore=shutil.ignore_patterns("features", "dedup"))
    with pytest.raises(ConfigError, match="has no minhash features: run `curate dedup"):
        cluster_near_duplicates(empty)


def test_unchanged_inputs_skip_and_a_new_corpus_is_hashed_alone_then_clustered_with_the_rest(
        planted_store, tmp_path, originals, write_jsonl):
    src, pairs = planted_store
    store = tmp_path / "store"
    shutil.copytree(src, store)
    first = cluster_near_duplicates(store, ClusterSettings(verify=True), force=True)
    again = cluster_near_duplicates(store, ClusterSettings(verify=True))
    assert again.skipped and again.clusters == first.clusters
    # a second corpus arrives holding exact copies of three originals that had no copy yet
    # (the s = 0.3 level's copies are too far to cluster)
    lone = [i for i, p in enumerate(pairs) if p.target == 0.3][:3]
    ingest([write_jsonl(tmp_path / "new.jsonl", [{"id": f"n{i}", "text": originals[i]} for i in lone])],
           store, "arrivals", progress=False)
    with pytest.raises(ConfigError, match="have no minhash features yet"):
        cluster_near_duplicates(store, ClusterSettings(verify=True))
    report = run_scorer(store, MinHashScorer(), workers=0)
    assert report.done == 1 and report.skipped == 3  # only the new shard is hashed
    after = cluster_near_duplicates(store, ClusterSettings(verify=True))
    assert not after.skipped and after.clusters == first.clusters + 3
    con = connect(store)
    got = con.sql("SELECT corpus, count(*) FROM doc_features WHERE dup_cluster_size = 2 AND orig_id IN "
                  f"({', '.join(repr(f'o{i}') for i in lone)}, {', '.join(repr(f'n{i}') for i in lone)}) "
                  "GROUP BY 1 ORDER BY 1").fetchall()
    assert got == [("arrivals", 3), ("planted", 3)]
    assert {r["name"] for r in after.by_corpus} == {"planted", "arrivals"}


def test_cli_hashes_clusters_and_refuses_bad_settings(planted_store, tmp_path):
    import flows.dedup  # noqa: F401  Prefect sets up its log handlers at import: on the real stdout, not the runner's

    src, _ = planted_store
    store = tmp_path / "store"
    shutil.copytree(src, store, ignore=shutil.ignore_patterns("near_dup", "dedup"))
    runner = CliRunner()
    res = runner.invoke(app, ["dedup", "--store", str(store), "--workers", "0", "--verify"])
    assert res.exit_code == 0, res.output
    assert "removable" in res.output and "planted" in res.output
    assert (store / "features" / "near_dup").is_dir()
    res = runner.invoke(app, ["dedup", "--store", str(store), "--workers", "0", "--bands", "0"])
    assert res.exit_code == 2 and "minhash bands must be a positive integer" in res.output
    res = runner.invoke(app, ["dedup", "--store", str(store), "--workers", "0", "--keep-order", "nope"])
    assert res.exit_code == 2 and "keep_order 'nope' does not bind" in res.output
