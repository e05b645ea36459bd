"""PreSelect end to end on real text: a tiny family → ranking → strength → selector → every document scored.

Six byte-level LMs (19k-110k parameters, 8k-256k training bytes doubling from one to the
next, each with its own seed and data slice) train in about 40 s on one core; a narrower
quality spread leaves too few perfect documents (the family is then refused, as it should be).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate import connect
from curate.errors import ConfigError
from curate.preselect import score, top_share, train
from curate.preselect.family import Family
from curate.preselect.selector import roc_auc
from curate.preselect.strength import predictive_strength
from curate.store import Store
from scorers.registry import build_scorers
from scorers.perplexity import PerplexityScorer

pytestmark = pytest.mark.slow


def _shape(hidden: int, layers: int) -> dict[str, int]:
    return {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": 2, "intermediate_size": 2 * hidden}


FAST = {"seq_len": 128, "batch_size": 4, "lr": 1e-2}
MEMBERS = [{"shape": _shape(h, n), "tokens": t, "seed": i, "slice": i % 3, **FAST}
           for i, (h, n, t) in enumerate([(32, 1, 8_000), (32, 1, 16_000), (48, 1, 32_000), (48, 2, 64_000),
                                          (64, 2, 128_000), (64, 3, 256_000)])]
TARGET = "SELECT text FROM docs WHERE hash(doc_id || '#target') % 5 = 0"
POOL = "SELECT doc_id, text, domain FROM docs WHERE hash(doc_id || '#target') % 5 <> 0"
ARGS = {"members": MEMBERS, "pool_sql": POOL, "target_sql": TARGET, "sample_docs": 1000, "target_docs": 60,
        "max_chars": 600, "threads": 1, "progress": False}


@pytest.fixture(scope="module")
def trained(make_real_store):
    import torch

    torch.set_num_threads(1)
    store = Store.open(make_real_store(60))
    t0 = time.perf_counter()
    card = train(store, **ARGS)
    return store, card, time.perf_counter() - t0


@pytest.fixture(scope="module")
def sample(trained):
    store, _, _ = trained
    return pq.read_table(store.path("models/preselect/strength.parquet"))


def test_family_is_trained_independently_and_ranked_by_measurement(trained):
    store, card, _ = trained
    assert len(card.family) == 6
    specs = [m["spec"] for m in card.family]
    assert len({s["seed"] for s in specs}) == 6 and {s["slice"] for s in specs} == {0, 1, 2}
    assert all(store.exists(f"models/{m['name']}/config.json") for m in card.family)
    bpc = [m["target_bpc"] for m in card.family]
    assert bpc == sorted(bpc) and [m["rank"] for m in card.family] == list(range(6))
    assert all(0 < b < 8 and m["target_loss"] > 0 for b, m in zip(bpc, card.family))
    saved = Family.from_dict(store.read_json("models/preselect/family.json"))
    assert [asdict(m) for m in saved.members] == card.family and saved.target_docs == 60
    assert card.target.startswith("target_sql") and "bits per character" in card.ranked_by


def test_stored_losses_are_bits_per_character_in_rank_order(trained, sample):
    store, card, _ = trained
    con = connect(store)
    rows = sample.slice(0, 3).to_pylist()
    texts = [con.execute("SELECT left(text, 600) FROM docs WHERE doc_id = ?", [r["doc_id"]]).fetchone()[0]
             for r in rows]
    batch = pa.record_batch({"doc_id": [r["doc_id"] for r in rows], "text": texts})
    for rank, m in enumerate(card.family):  # the perplexity scorer is an independent way in to the same model
        out = PerplexityScorer(m["path"], max_tokens=4096, dtype="float32").score(batch).to_pydict()
        for i, r in enumerate(rows):
            expect = out["nll"][i] * out["n_tokens"][i] / math.log(2) / len(texts[i])
            assert r["bpc"][rank] == pytest.approx(expect, rel=1e-4)
    bpc = np.array(sample.column("bpc").to_pylist()).T
    assert np.array_equal(predictive_strength(bpc), sample.column("strength").to_numpy())


def test_strength_labels_and_selector_card(trained, sample):
    _, card, _ = trained
    s = sample.to_pydict()
    n = len(s["doc_id"])
    strength = np.array(s["strength"])
    assert card.sample_docs == n > 200  # every pool document is sampled (the pool is 4/5 of 320)
    assert sum(card.strength["distribution"].values()) == n
    assert card.strength["perfect"] == (strength == 15).sum() == card.positives == card.negatives
    labels = np.array(s["label"], dtype=object)
    assert (strength[labels == "1"] == 15).all()
    unlabelled_low = strength[np.array([v is None for v in labels]) & (strength < 15)]
    assert strength[labels == "0"].max() <= (unlabelled_low.min() if len(unlabelled_low) else 15)
    bal = card.class_balance
    assert bal["train"]["1"] == bal["train"]["0"] and bal["valid"]["1"] == bal["valid"]["0"] >= 1
    assert sum(r["positives"] for r in card.positives_by_domain.values()) == card.positives
    # the card's AUC is the validation rows' AUC, recomputed from the stored scores
    valid = np.array(s["split"], dtype=object) == "valid"
    probs = np.array(s["preselect_score"])
    assert card.valid_auc == pytest.approx(roc_auc(labels[valid] == "1", probs[valid]), abs=1e-4)
    assert 0 <= card.valid_auc <= 1 and ((probs >= 0) & (probs <= 1)).all()
    q = card.score_quantiles
    assert q["min"] == pytest.approx(probs.min(), abs=1e-6) and q["max"] == pytest.approx(probs.max(), abs=1e-6)
    assert q["min"] <= q["p10"] <= q["p50"] <= q["p90"] <= q["max"]
    assert card.fasttext["lr"] == 0.1 and card.fasttext["dim"] == 100 and card.fasttext["wordNgrams"] == 2
    assert card.fasttext["epoch"] == 3 and card.preprocess == {"newlines": "spaces", "lowercase": False,
                                                                 "max_chars": 600}


def test_report(trained):
    store, card, _ = trained
    md = store.read_bytes("models/preselect/report.md").decode()
    for needle in ("## Family", "## Where positives come from", "10 highest-scored", "10 lowest-scored",
                   f"AUC {card.valid_auc:.3f}", card.family[0]["name"]):
        assert needle in md
    assert store.read_bytes("models/preselect/strength.png")[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_document_gets_one_score_and_the_top_tenth_by_characters(trained):
    store, card, _ = trained
    (scorer,) = build_scorers(store, ["preselect"])
    assert scorer.settings["max_chars"] == 600 and scorer.model_path == Path(store.path("models/preselect/model.bin"))
    report = score(store)
    assert report.ok and report.rows == 320
    con = connect(store)
    n, distinct, in_range, nulls = con.execute(
        "SELECT count(*), count(DISTINCT doc_id), bool_and(preselect_score BETWEEN 0 AND 1), "
        "count(*) FILTER (preselect_score IS NULL) FROM doc_features").fetchone()
    assert n == distinct == 320 and in_range and nulls == 0
    # the scorer prepares text exactly as training did: the sample's scores come back
    diff = con.execute("SELECT max(abs(s.preselect_score - f.preselect_score)), count(*) FROM "
                       "read_parquet('models/preselect/strength.parquet') s JOIN preselect f USING (doc_id)").fetchone()
    assert diff[1] == card.sample_docs and diff[0] < 1e-6
    rows = con.execute("SELECT doc_id, length(text), preselect_score FROM doc_features").fetchall()
    total = sum(r[1] for r in rows)
    kept = top_share(con, share=0.1).fetchall()
    kept_chars = sum(r[2] for r in kept)
    assert kept_chars >= 0.1 * total > kept_chars - kept[-1][2]
    kept_ids = {r[0] for r in kept}
    assert min(r[3] for r in kept) >= max(r[2] for r in rows if r[0] not in kept_ids)
    assert score(store).done == 0  # a re-run finds every shard up to date


def test_same_request_reuses_the_selector(trained):
    store, card, first_seconds = trained
    t0 = time.perf_counter()
    again = train(store, **ARGS)
    assert again.created == card.created and again.sha256 == card.sha256
    assert time.perf_counter() - t0 < first_seconds / 3


def test_copies_of_one_model_are_refused(trained):
    store, _, _ = trained
    copy = MEMBERS[2]
    with pytest.raises(ConfigError, match=r"only 0 sampled documents have a perfect score.*distribution"):
        train(store, **{**ARGS, "members": [copy, copy, copy], "sample_docs": 40}, name="copies")


def test_bad_labelling_options_are_refused_before_the_family_trains(trained):
    store, _, _ = trained
    for bad, match in (({"negatives": "random"}, "negatives must be one of lowest, rest"),
                       ({"positive_share": 1.5}, r"positive_share must be in \(0, 1\)"),
                       ({"positive_share": 0.1, "positive_strength": 14}, "not both")):
        with pytest.raises(ConfigError, match=match):
            train(store, **{**ARGS, **bad}, name="refused", force=True)
    # no member of the family was trained (they would be models/refused-ref<i>/) and no selector written
    assert not [m for m in store.list_dirs("models") if m.startswith("refused")]


def test_train_preselect_flow_publishes_and_scores(trained, tmp_path):
    """The Prefect flow (own PREFECT_HOME, in a subprocess): reuses the selector, then the score flow skips done shards."""
    store, card, _ = trained
    code = (
        "import json, sys; from flows.preselect import train_preselect_flow as f; "
        f"out = f({store.root!r}, members={MEMBERS!r}, pool_sql={POOL!r}, target_sql={TARGET!r}, "
        "sample_docs=1000, target_docs=60, max_chars=600, threads=1, score=True, workers=0, progress=False); "
        "print('RESULT', json.dumps({'created': out['card']['created'], 'scoring': out['scoring']}))"
    )
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180", OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True, timeout=400,
                         cwd=Path(__file__).resolve().parents[2])
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.split("RESULT", 1)[1])
    assert out["created"] == card.created  # the same request: the saved selector, not a new one
    assert out["scoring"][0]["scorer"] == "preselect" and out["scoring"][0]["shards done"] == 0
    assert out["scoring"][0]["skipped (up to date)"] == len(store.list_files("shards/c"))
    assert "validation AUC" in res.stdout + res.stderr
