"""Building: ordered parts, plan, manifest and report; byte-identical rebuilds; the shipped SQL."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from curate import connect
from curate.mixture import MixtureManifest, build_mixture, load_spec
from curate.query import SQL_DIR
from tests.mixture._specs import spec_dict


@pytest.fixture(scope="module")
def built(mix_store):
    spec = load_spec(spec_dict(name="b", tokens=400_000, max_epochs=3))
    return build_mixture(mix_store, spec, part_tokens=150_000)


def _files(m: MixtureManifest) -> dict[str, bytes]:
    d = Path(m.store.path(m.dir))
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_parts_are_in_training_order_with_phases_last(built):
    d = Path(built.store.path(built.dir))
    parts = [pq.read_table(d / p["name"]) for p in built.parts]
    assert len(parts) >= 3 and [p["rows"] for p in built.parts] == [t.num_rows for t in parts]
    rows = [r for t in parts for r in t.select(["position", "phase", "domain", "doc_id", "epoch", "n_tokens"]).to_pylist()]
    assert [r["position"] for r in rows] == list(range(len(rows)))
    phases = [r["phase"] for r in rows]
    switch = phases.index("anneal")
    assert set(phases[:switch]) == {"main"} and set(phases[switch:]) == {"anneal"}
    assert {r["domain"] for r in rows[switch:]} == {"math", "code", "encyclopedic"}
    plan = pq.read_table(d / "plan.parquet")
    assert plan.select(list(rows[0])).to_pylist() == rows  # plan.parquet is the same rows without text
    # plus where each use is: its first stream token (EOS after every document), its document's shard and row
    n = plan.column("n_tokens").to_numpy()
    assert plan.column("stream_start").to_pylist() == np.concatenate([[0], np.cumsum(n + 1)[:-1]]).tolist()
    for r in plan.slice(0, 40).to_pylist():
        shard = pq.read_table(Path(built.store.path(r["doc_file"])), columns=["doc_id"]).column("doc_id")
        assert shard[r["doc_row"]].as_py() == r["doc_id"]
    # texts are the store's texts
    texts = dict(connect(built.store).execute("SELECT doc_id, text FROM docs").fetchall())
    t0 = parts[0].slice(0, 50).to_pylist()
    assert all(r["text"] == texts[r["doc_id"]] and r["n_tokens"] == len(r["text"].encode()) for r in t0)


def test_manifest_counts_match_the_parts(built):
    m = built.data
    assert m["tokens"]["planned"] == sum(p["tokens"] for p in built.parts)
    assert m["rows"] == sum(p["rows"] for p in built.parts)
    main = m["phases"][0]["domains"]
    assert set(main) == set(spec_dict()["weights"])
    assert m["spec"]["select_sql"] is None and m["spec_hash"] and m["store"]["shards/c"]
    assert 1.0 <= m["tokens"]["multiplier"] <= 3.0
    assert MixtureManifest.load(built.store, "b").fingerprint == built.fingerprint


def test_rebuild_is_byte_identical(built):
    before = _files(built)
    again = build_mixture(built.store, load_spec(spec_dict(name="b", tokens=400_000, max_epochs=3)),
                          part_tokens=150_000)
    after = _files(again)
    assert set(before) == set(after) and {"report.md", "domain_share.png", "tokens.png", "manifest.json"} <= set(after)
    for name in before:
        assert before[name] == after[name], name


def test_reuse_leaves_an_up_to_date_mixture_alone_and_rebuilds_a_stale_one(mix_store):
    """What a scheduled rebuild does: same spec over the same store files -> nothing written; else a rebuild."""
    import os

    from curate.execute import run_scorer
    from scorers.registry import get_scorer

    spec = spec_dict(name="reuse", tokens=100_000)
    first = build_mixture(mix_store, load_spec(spec))
    manifest = Path(mix_store.path(first.dir, "manifest.json"))
    stamps = {p.name: os.stat(p).st_mtime_ns for p in manifest.parent.iterdir()}
    again = build_mixture(mix_store, load_spec(spec), reuse=True)
    assert again.fingerprint == first.fingerprint
    assert {p.name: os.stat(p).st_mtime_ns for p in manifest.parent.iterdir()} == stamps
    # another spec: rebuilt
    other = build_mixture(mix_store, load_spec({**spec, "seed": 1}), reuse=True)
    assert other.data["spec_hash"] != first.data["spec_hash"] and os.stat(manifest).st_mtime_ns != stamps["manifest.json"]
    # the store changed (a new feature table): rebuilt, and the manifest names the table
    stamp = os.stat(manifest).st_mtime_ns
    run_scorer(mix_store, get_scorer("heuristics"), workers=0, progress=False)
    fresh = build_mixture(mix_store, load_spec({**spec, "seed": 1}), reuse=True)
    assert "features/heuristics" in fresh.data["store"] and os.stat(manifest).st_mtime_ns != stamp


def test_report_markdown_table(built):
    md = Path(built.store.path(built.dir, "report.md")).read_text()
    assert "| anneal | math |" in md and "repetition multiplier" in md


def test_shipped_selection_queries_run(mix_store, tmp_path):
    from curate.execute import run_scorer
    from scorers.heuristics import HeuristicsScorer

    con = connect(mix_store)
    n = con.execute("SELECT count(*) FROM docs").fetchone()[0]
    kept = con.execute((SQL_DIR / "dedup_exact.sql").read_text()).fetchall()
    assert len(kept) == n  # real docs have no exact duplicates
    # a duplicate text under another corpus is removed
    src = tmp_path / "dup.jsonl"
    text = con.execute("SELECT text FROM docs LIMIT 1").fetchone()[0]
    src.write_text(json.dumps({"text": text, "domain": "web"}) + "\n")
    from curate import ingest

    ingest([src], mix_store, "dupcopy", progress=False)
    try:
        assert len(connect(mix_store).execute((SQL_DIR / "dedup_exact.sql").read_text()).fetchall()) == n
    finally:
        import shutil

        shutil.rmtree(mix_store.path("shards", "dupcopy"))
        shutil.rmtree(mix_store.path("quarantine", "dupcopy"), ignore_errors=True)
    run_scorer(mix_store, HeuristicsScorer(), workers=0, progress=False)
    # select_quality.sql needs langid too: a real table from the heuristics' own scored docs is enough here
    import pyarrow as pa

    ids = [r[0] for r in connect(mix_store).execute("SELECT doc_id FROM docs").fetchall()]
    langdir = Path(mix_store.path("features", "langid"))
    langdir.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"doc_id": ids, "lang": ["en"] * len(ids)}), langdir / "c--part-00000.parquet")
    sql = (SQL_DIR / "select_quality.sql").read_text().replace("corpus = 'demo'", "corpus = 'c'")
    rows = connect(mix_store).execute(sql).fetchall()
    assert 0 < len(rows) < n
    spec_file = tmp_path / "q.yaml"
    (tmp_path / "q.sql").write_text(sql)
    spec_file.write_text("name: q\ntokens: 50000\nselect: q.sql\nweights: {web: 0.5, code: 0.5}\n")
    m = build_mixture(mix_store, load_spec(spec_file), report=False)
    chosen = {r[0] for r in rows}
    used = pq.read_table(Path(mix_store.path(m.dir, "plan.parquet"))).column("doc_id").to_pylist()
    assert set(used) <= chosen
    import shutil

    shutil.rmtree(langdir)
    shutil.rmtree(mix_store.path("features", "heuristics"))


def test_report_compares_selected_scores_with_the_pool(mix_store):
    from curate.execute import run_scorer
    from scorers.heuristics import HeuristicsScorer

    run_scorer(mix_store, HeuristicsScorer(), workers=0, progress=False)  # a no-op when already scored
    weights = {"web": 0.5, "books": 0.3, "forum": 0.2}
    cut = connect(mix_store).execute("SELECT median(alpha_ratio) FROM doc_features WHERE domain IN "
                                     "('web', 'books', 'forum')").fetchone()[0]
    spec = load_spec(spec_dict(name="sel", tokens=30_000, where=[f"alpha_ratio >= {cut}"], weights=weights,
                               phases=[{"name": "main", "fraction": 1.0}]))
    m = build_mixture(mix_store, spec)
    scores = m.store.read_json(f"{m.dir}/scores.json")
    a = scores["alpha_ratio"]
    used = pq.read_table(Path(m.store.path(m.dir, "plan.parquet"))).column("doc_id").unique()
    assert a["selected"]["docs"] == len(used) < a["pool"]["docs"] == sum(a["pool"]["counts"])
    assert a["selected"]["median"] >= cut >= a["pool"]["median"]  # the filter moved the distribution up
    low_bins = [i for i, e in enumerate(a["edges"][1:]) if e < cut - 1e-9]
    assert sum(a["selected"]["counts"][i] for i in low_bins) == 0 < sum(a["pool"]["counts"][i] for i in low_bins)
    md = Path(m.store.path(m.dir, "report.md")).read_text()
    assert "## Scores: pool vs selected" in md and "| alpha_ratio |" in md
    assert Path(m.store.path(m.dir, "scores.png")).stat().st_size > 1000
