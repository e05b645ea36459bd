"""Domain tagging end to end on real text: train from store labels, card, scoring, and the generic fastText scorer."""

from __future__ import annotations

import pyarrow as pa
import pytest

from curate import connect
from curate.domain import model_path, train_domain
from curate.errors import ConfigError
from curate.execute import run_scorer
from curate.store import Store
from scorers.domain import DomainScorer
from scorers.fasttext import FastTextScorer


@pytest.fixture(scope="module")
def trained(make_real_store):
    store = make_real_store(100)
    card = train_domain(store, per_label=40, epoch=25, threads=1)
    return Store.open(store), card


def test_card_reports_every_domain(trained):
    st, card = trained
    assert len(card.labels) == 8 and set(card.per_domain) == set(card.labels)
    assert card.train_docs + card.valid_docs == 320
    assert 0.5 < card.accuracy <= 1.0  # 8 classes: chance is 0.125
    assert st.exists("models/domain/card.json") and len(card.sha256) == 64


def test_same_request_reuses_the_model(trained):
    st, card = trained
    again = train_domain(st, per_label=40, epoch=25, threads=1)
    assert again.sha256 == card.sha256 and again.created == card.created


def test_domain_scores_agree_with_labels(trained):
    st, _ = trained
    report = run_scorer(st, DomainScorer(model_path(st)), workers=0)
    assert report.ok and report.rows == 320
    agree, prob_ok = connect(st).execute(
        "SELECT avg((domain_pred = domain)::INT), bool_and(domain_prob BETWEEN 0 AND 1 AND len(domain_top3) = 3) "
        "FROM doc_features"
    ).fetchone()
    assert agree > 0.6 and prob_ok  # 8 classes, 40 docs each: chance is 0.125


def test_generic_fasttext_scorer_gives_p_label(trained):
    st, _ = trained
    scorer = FastTextScorer(model_path(st), label="code", table="is_code")
    run_scorer(st, scorer, workers=0)
    code, other = connect(st).execute(
        "SELECT avg(is_code_score) FILTER (domain = 'code'), avg(is_code_score) FILTER (domain <> 'code') FROM doc_features"
    ).fetchone()
    assert code > 0.5 > other


def test_missing_model_and_bad_label_are_refused(tmp_path, trained):
    st, _ = trained
    with pytest.raises(ConfigError, match="curate train-domain"):
        model_path(st, "never-trained")
    with pytest.raises(ConfigError, match="not found"):
        DomainScorer(str(tmp_path / "nope.bin"))
    bad = FastTextScorer(model_path(st), label="nonexistent")
    with pytest.raises(ConfigError, match="its labels are"):
        bad.score(pa.record_batch({"doc_id": ["a"], "text": ["x"]}))
