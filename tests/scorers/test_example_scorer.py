"""Adding a scorer is one file: ``example_scorer.py`` runs from the CLI by class path, its model resolved by name."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from curate import connect
from curate.cli import app
from curate.store import Store
from scorers.perplexity import PerplexityScorer
from scorers.registry import available, build_scorer, scorer_class
from tests.scorers.example_scorer import OpeningScorer

CLASS_PATH = "tests.scorers.example_scorer:OpeningScorer"


@pytest.fixture(scope="module")
def lm_store(make_real_store):
    from curate.lm.train import train_lm

    store = make_real_store(100)
    train_lm(store, "tiny-lm", config="micro", tokens=20_000, seq_len=128, batch_size=4, threads=1, progress=False)
    return Store.open(store)


def test_the_new_scorer_runs_from_the_cli_with_its_model_resolved_by_name(lm_store):
    import flows.score  # noqa: F401  Prefect sets up its log handlers at import: on the real stdout, not the runner's

    r = CliRunner().invoke(app, ["score", "--scorers", CLASS_PATH, "--model", "tiny-lm", "--workers", "0",
                                 "--store", lm_store.uri])
    assert r.exit_code == 0, r.output
    con = connect(lm_store)
    rows = dict(con.execute("SELECT doc_id, opening_bits_per_byte FROM opening").fetchall())
    assert len(rows) == con.execute("SELECT count(*) FROM docs").fetchall()[0][0]
    # the same number the perplexity scorer gives for the first 64 tokens with the same model
    ppl = PerplexityScorer(lm_store.path("models/tiny-lm"), max_tokens=64, dtype="float32")
    opening = build_scorer(lm_store, CLASS_PATH, model="tiny-lm", dtype="float32")
    batch = con.execute("SELECT doc_id, text FROM docs ORDER BY doc_id LIMIT 40").to_arrow_table().to_batches()[0]
    assert opening.score(batch).column(1).to_pylist() == pytest.approx(ppl.score(batch).column(3).to_pylist(), rel=1e-5)


def test_scorers_are_found_without_a_list_to_edit():
    names = available()
    assert {"heuristics", "langid", "domain", "fasttext", "perplexity", "el2n", "grand", "preselect", "tokens",
            "mates"} <= set(names)
    for name in names:  # what the registry read from the sources is what the class says when imported
        assert scorer_class(name).name == name
    assert scorer_class(CLASS_PATH) is OpeningScorer and OpeningScorer.model_kind == "lm"
