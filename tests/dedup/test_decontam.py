"""Decontamination on real text: a pasted target paragraph, a near-copy and stock phrases, through the engine."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from curate import ingest
from curate.cli import app
from curate.embedded import write_jsonl
from curate.errors import ConfigError
from curate.execute import run_scorer
from curate.query import SQL_DIR, connect
from curate.store import Store
from scorers.decontam import DecontamScorer
from scorers.registry import build_scorer

STOCK = ("on the other hand it is important to note that in the end of the day we have to take into account "
         "the fact that at the same time as a matter of fact")


@pytest.fixture(scope="module")
def contaminated_store(tmp_path_factory, corpus_paths):
    """Target: 5 real encyclopedic paragraphs ingested as corpus ``bench``. Pool: real documents, plus one
    with a target item pasted into its middle, one near-copy of another item (a few words changed), and one
    that shares only stock phrases with a target item we append them to."""
    tmp = tmp_path_factory.mktemp("decontam")
    docs = pq.read_table(corpus_paths["heldout"], columns=["text", "domain"]).to_pylist()
    prose = [d["text"] for d in docs if d["domain"] == "encyclopedic" and 400 < len(d["text"]) < 1500][:5]
    other = [d["text"] for d in docs if d["domain"] in ("books", "forum") and len(d["text"]) > 3000][:12]
    items = [*prose[:4], prose[4] + " " + STOCK]
    words = prose[1].split()
    near = " ".join(w if i % 40 else "changed" for i, w in enumerate(words))  # 1 word in 40 replaced
    pool = [{"id": f"p{i}", "text": t} for i, t in enumerate(other)]
    half = len(other[0]) // 2
    pool += [{"id": "pasted", "text": other[0][:half] + "\n\n" + prose[0] + "\n\n" + other[0][half:]},
             {"id": "near", "text": near},
             {"id": "stock", "text": other[1] + " " + STOCK}]
    ingest([write_jsonl(tmp / "bench.jsonl", [{"id": f"t{i}", "text": t, "domain": "prose"}
                                              for i, t in enumerate(items)])], tmp / "store", "bench", progress=False)
    ingest([write_jsonl(tmp / "pool.jsonl", [{**d, "domain": "prose"} for d in pool])], tmp / "store", "pool",
           progress=False)
    return tmp / "store"


def flags(store) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in connect(store).sql(
        "SELECT orig_id, contaminated, overlap_ngrams, round(target_coverage, 3), overlap_doc_id IS NOT NULL "
        "FROM doc_features WHERE corpus = 'pool'").fetchall()}


def test_pasted_paragraph_and_near_copy_are_flagged_stock_phrases_are_not(contaminated_store):
    scorer = build_scorer(Store.open(contaminated_store), "decontam", target="bench")
    report = run_scorer(contaminated_store, scorer, workers=0)
    assert report.done == 2 and not report.failed
    got = flags(contaminated_store)
    assert got["pasted"][0] and got["pasted"][2] == 1.0  # the whole item is inside the pool document
    assert got["near"][0] and got["near"][2] > 0.5
    assert not got["stock"][0]  # shares a 30-word stock phrase with an item, but little of the item
    assert got["stock"][1] > 0 and got["stock"][3]  # ... which is still reported as an overlap
    assert sum(v[0] for v in got.values()) == 2  # nothing else in the pool is flagged
    leaked = connect(contaminated_store).execute((SQL_DIR / "contamination.sql").read_text()).fetchall()
    assert sorted(r[2] for r in leaked) == sorted(
        connect(contaminated_store).sql("SELECT doc_id FROM docs WHERE orig_id IN ('pasted', 'near')").fetchall()[i][0]
        for i in range(2))
    # the same target again: every shard is up to date; a changed target (fewer items) re-scores all
    assert run_scorer(contaminated_store, build_scorer(Store.open(contaminated_store), "decontam", target="bench"),
                      workers=0).skipped == 2
    narrower = build_scorer(Store.open(contaminated_store), "decontam",
                            target="SELECT doc_id, text FROM docs WHERE corpus = 'bench' AND orig_id <> 't0'")
    assert narrower.fingerprint() != scorer.fingerprint()
    assert run_scorer(contaminated_store, narrower, workers=0).done == 2
    assert not flags(contaminated_store)["pasted"][0]  # t0, the pasted item, is no longer in the target


def test_bad_targets_and_thresholds_are_refused_before_work(contaminated_store):
    st = Store.open(contaminated_store)
    with pytest.raises(ConfigError, match="'nope' is not a corpus"):
        DecontamScorer.from_store(st, target="nope")
    with pytest.raises(ConfigError, match="has no documents"):
        DecontamScorer.from_store(st, target="SELECT doc_id, text FROM docs WHERE false")
    with pytest.raises(ConfigError, match="target SQL does not run"):
        DecontamScorer.from_store(st, target="SELECT doc_id, txt FROM docs")
    with pytest.raises(ConfigError, match="needs a target"):
        DecontamScorer.from_store(st)
    with pytest.raises(ConfigError, match="min_coverage must be in"):
        DecontamScorer.from_store(st, target="bench", min_coverage=0)
    import flows.decontam  # noqa: F401  Prefect's log handlers on the real stdout (see the CLI test below)

    res = CliRunner().invoke(app, ["decontam", "--store", str(contaminated_store), "--target", "nope",
                                   "--workers", "0"])
    assert res.exit_code == 2 and "'nope' is not a corpus" in res.output


def test_cli_scores_and_lists_what_leaked(contaminated_store):
    import flows.decontam  # noqa: F401  Prefect sets up its log handlers at import: on the real stdout, not the runner's

    res = CliRunner().invoke(app, ["decontam", "--store", str(contaminated_store), "--target", "bench",
                                   "--workers", "0"])
    assert res.exit_code == 0, res.output
    shown = " ".join(res.output.split())  # rich wraps the title
    assert "2 documents outside the target's corpus hold text of 'bench'" in shown and "the most contaminated" in shown


def test_a_mixture_keeps_one_copy_and_drops_what_leaked(contaminated_store):
    from curate.dedup.cluster import cluster_near_duplicates
    from curate.mixture import load_spec, plan_mixture
    from scorers.minhash import MinHashScorer

    run_scorer(contaminated_store, build_scorer(Store.open(contaminated_store), "decontam", target="bench"), workers=0)
    run_scorer(contaminated_store, MinHashScorer(), workers=0)
    cluster_near_duplicates(contaminated_store)
    con = connect(contaminated_store)
    n_tokens = con.sql("SELECT sum(n_bytes) FROM doc_features WHERE corpus = 'pool' AND dup_keep "
                       "AND NOT contaminated").fetchall()[0][0]
    spec = load_spec({"name": "clean", "tokens": int(n_tokens * 0.9), "seed": 0, "max_epochs": 1,
                      "weights": {"prose": 1.0},
                      "where": ["corpus = 'pool'", "dup_keep AND NOT contaminated"]})
    plan = plan_mixture(contaminated_store, spec)
    used = {r[0] for r in plan.con.execute("SELECT DISTINCT d.orig_id FROM plan_occ JOIN docs d USING (doc_id)"
                                           ).fetchall()}
    assert used and not used & {"pasted", "near"} and all(u.startswith(("p", "stock")) for u in used)
