"""The influence model on real probes: it ranks held-out probes better than a constant, and reloads exactly."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from curate import connect
from curate.mates.influence import InfluenceModel, train_influence


def test_influence_model_beats_a_constant_predictor_on_heldout_probes(stage0, mates_store):
    probes = pq.read_table(mates_store.path(stage0.dir, "probes.parquet")).to_pandas()
    probes = probes[np.isfinite(probes["oracle_z"])]
    assert len(probes) >= 100 and probes["domain"].nunique() == 7
    assert probes["heldout_pred"].notna().all()  # every probe predicted by a model that never saw it
    y, pred = probes["oracle_z"].to_numpy(), probes["heldout_pred"].to_numpy()
    # a constant predictor ranks nothing (Spearman undefined / 0); the model must do better, with confidence:
    # a permutation test computed here, independently of curate.mates.stats
    rank_y = pd.Series(y).rank().to_numpy()  # average ranks for ties, as Spearman defines them

    def rho_of(x: np.ndarray) -> float:
        return float(np.corrcoef(pd.Series(x).rank().to_numpy(), rank_y)[0, 1])

    rho = rho_of(pred)
    rng = np.random.default_rng(123)
    null = np.array([rho_of(rng.permutation(pred)) for _ in range(999)])
    p = (np.sum(null >= rho) + 1) / (len(null) + 1)
    assert rho > 0 and p < 0.05, (rho, p)
    card = json.loads(mates_store.read_bytes(f"{stage0.dir}/influence_card.json"))
    assert card["spearman_heldout"] == pytest.approx(rho, abs=1e-9) == pytest.approx(stage0.spearman, abs=1e-9)
    assert card["pvalue"] < 0.05 and card["heldout_probes"] == len(probes)
    # and in squared error: out-of-fold predictions beat predicting the training mean (0 on the z scale)
    assert np.mean((pred - y) ** 2) < np.mean(y**2)


def test_saved_influence_model_predicts_what_the_feature_table_holds(stage0, mates_store):
    con = connect(mates_store)
    rows = con.sql(f"SELECT d.text, f.mates_influence FROM {stage0.table} f JOIN docs d USING (doc_id) "
                   "WHERE f.mates_influence IS NOT NULL ORDER BY doc_id LIMIT 12").fetchall()
    model = InfluenceModel.load(mates_store.path("models", stage0.model))
    pred = model.predict([r[0] for r in rows])
    assert np.allclose(pred, [r[1] for r in rows], atol=1e-4)


def test_finetune_kind_trains_keeps_best_epoch_and_reloads(stage0, mates_store):
    probes = pq.read_table(mates_store.path(stage0.dir, "probes.parquet")).slice(0, 20)
    docs = dict(connect(mates_store).sql("SELECT doc_id, text FROM docs").fetchall())
    texts = [docs[d] for d in probes.column("doc_id").to_pylist()]
    fit = train_influence(mates_store, "ft-test", texts, probes.column("oracle_loss").to_numpy(), kind="finetune",
                          chunk_tokens=32, max_chunks=1, epochs=2, batch_size=8, valid_fraction=0.25)
    card = fit.card
    assert card.kind == "finetune" and len(card.history) == 2 and card.selected["best_epoch"] in (1, 2)
    assert card.heldout_probes == 5 and np.isfinite(fit.heldout_pred).sum() == 5
    assert mates_store.exists("models/ft-test/encoder/model.safetensors")
    again = InfluenceModel.load(mates_store.path("models/ft-test"))
    assert np.allclose(again.predict(texts[:4]), fit.model.predict(texts[:4]), atol=1e-5)


def test_model_hash_follows_the_weights_not_the_file_bytes(stage0, mates_store, tmp_path):
    import shutil

    from curate.mates.influence import HEAD_FILE, model_sha256

    src = mates_store.path("models", stage0.model)
    copy_dir = tmp_path / "m"
    shutil.copytree(src, copy_dir)
    before = model_sha256(copy_dir)
    with np.load(copy_dir / HEAD_FILE) as head:
        arrays = {k: head[k] for k in head.files}
    np.savez(copy_dir / HEAD_FILE, **arrays)  # same weights, a new zip (new member times)
    assert model_sha256(copy_dir) == before
    arrays["b"] = arrays["b"] + 1.0
    np.savez(copy_dir / HEAD_FILE, **arrays)
    assert model_sha256(copy_dir) != before
