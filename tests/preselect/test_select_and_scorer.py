"""Top share by characters (Python and the shipped SQL), and the preselect scorer on user-supplied selectors."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from curate import connect
from curate.cli import app
from curate.errors import ConfigError
from curate.execute import run_scorer
from curate.fasttext import fit_supervised, label_probs, load_fasttext
from curate.preselect.scorer import PreSelectScorer
from curate.query import SQL_DIR
from curate.selection import top_share, top_share_doc_ids, top_share_sql
from curate.store import Store
from scorers.registry import build_scorers


@pytest.fixture(scope="module")
def scored_store(make_real_store):
    """Real docs plus a `preselect` feature table with distinct, known scores."""
    store = make_real_store(100)
    ids = [r[0] for r in connect(store).execute("SELECT doc_id FROM docs ORDER BY doc_id").fetchall()]
    rng = np.random.default_rng(0)
    feats = store / "features" / "preselect"
    feats.mkdir(parents=True)
    pq.write_table(pa.table({"doc_id": ids, "preselect_score": pa.array(rng.permutation(len(ids)) / len(ids),
                                                                        pa.float32())}),
                   feats / "part-00000.parquet")
    return store


def _expected(rows: list[tuple[str, str, int, float]], share: float) -> list[str]:
    """Best first until the characters reach ``share`` of the pool's (the crossing document kept)."""
    rows = sorted(rows, key=lambda r: (-r[3], r[0]))
    total, kept, acc = sum(r[2] for r in rows), [], 0
    for doc, _dom, n, _s in rows:
        if acc >= share * total:
            break
        kept.append(doc)
        acc += n
    return kept


@pytest.mark.parametrize("share", [0.1, 0.25, 1.0])
def test_top_share_by_characters_over_the_whole_pool(scored_store, share):
    con = connect(scored_store)
    rows = con.execute("SELECT doc_id, domain, length(text), preselect_score FROM doc_features").fetchall()
    got = top_share(con, share=share).fetchall()
    assert [r[0] for r in got] == _expected(rows, share)
    total = sum(r[2] for r in rows)
    kept_chars = sum(r[2] for r in got)
    assert kept_chars >= share * total and kept_chars - got[-1][2] < share * total
    if share < 1:  # every kept document scores at least as high as every dropped one
        kept = {r[0] for r in got}
        assert min(r[3] for r in got) >= max(r[3] for r in rows if r[0] not in kept)


def test_top_share_per_domain_and_where(scored_store):
    con = connect(scored_store)
    rows = con.execute("SELECT doc_id, domain, length(text), preselect_score FROM doc_features").fetchall()
    got = top_share(con, share=0.2, per="domain").fetchall()
    for dom in {r[1] for r in rows}:
        assert [r[0] for r in got if r[1] == dom] == _expected([r for r in rows if r[1] == dom], 0.2)
    code = top_share_doc_ids(con, share=0.5, where="domain = 'code'")
    assert code == _expected([r for r in rows if r[1] == "code"], 0.5)


def test_shipped_sql_runs_as_is_and_matches_the_function(scored_store):
    con = connect(scored_store)
    text = (SQL_DIR / "select_preselect_top.sql").read_text()
    assert con.sql(text).fetchall() == top_share(con, share=0.1).fetchall()
    assert top_share_sql().endswith(text.split("ranked AS (", 1)[1])
    with pytest.raises(ConfigError, match="share"):
        top_share_sql(share=0)
    with pytest.raises(ConfigError, match="plain column"):
        top_share_sql("x; DROP TABLE docs")


@pytest.fixture(scope="module")
def user_selector(tmp_path_factory, real_docs):
    """A selector as a user might bring one: labels hq / lq (code is "high quality" here)."""
    out = tmp_path_factory.mktemp("bin") / "user.bin"
    examples = [("hq" if d["domain"] == "code" else "lq", d["text"][:2000]) for d in real_docs]
    return fit_supervised(examples, out, threads=1, epoch=20, lr=0.5, dim=16, bucket=20_000, wordNgrams=1)


def test_scorer_uses_the_positive_label_setting(user_selector, real_docs):
    batch = pa.record_batch({"doc_id": [d["id"] for d in real_docs], "text": [d["text"] for d in real_docs]})
    out = PreSelectScorer(str(user_selector), positive_label="__label__hq").score(batch)
    assert out.schema.names == ["doc_id", "preselect_score"] and out.num_rows == len(real_docs)
    p = out.column("preselect_score").to_numpy()
    code = np.array([d["domain"] == "code" for d in real_docs])
    assert p[code].mean() > 0.5 > p[~code].mean()
    # P(hq) + P(lq) = 1 for a two-label model, newlines handled like training (never cut at the first one)
    lq = label_probs(load_fasttext(user_selector), [d["text"] for d in real_docs], "lq")
    assert np.allclose(p + lq, 1.0, atol=1e-4)
    with pytest.raises(ConfigError, match="its labels are"):
        PreSelectScorer(str(user_selector)).setup()  # default positive label "1" is not in this model


def test_a_published_style_selector_scores_every_document(make_real_store, tmp_path, real_docs):
    st = Store.open(make_real_store(100))
    published = tmp_path / "preselect.bin"  # __label__1 / __label__0, as the authors' classifier
    fit_supervised([("1" if d["domain"] == "math" else "0", d["text"]) for d in real_docs], published, threads=1,
                   bucket=20_000)
    (scorer,) = build_scorers(st, ["preselect"], {"preselect": {"model_path": str(published)}})
    assert scorer.settings == {"positive_label": "1", "max_chars": None}
    report = run_scorer(st, scorer, workers=0, progress=False)
    assert report.ok and report.rows == 320
    n, distinct, ok = connect(st).execute(
        "SELECT count(*), count(DISTINCT doc_id), bool_and(preselect_score BETWEEN 0 AND 1) FROM doc_features"
    ).fetchone()
    assert n == distinct == 320 and ok
    with pytest.raises(ConfigError, match="curate preselect train"):
        build_scorers(st, ["preselect"], {"preselect": {"model": "never-trained"}})
    with pytest.raises(ConfigError, match="not found"):
        PreSelectScorer(str(tmp_path / "missing.bin"))


def test_cli_help_lists_train_and_score():
    res = CliRunner().invoke(app, ["preselect", "--help"])
    assert res.exit_code == 0 and "train" in res.output and "score" in res.output
    res = CliRunner().invoke(app, ["preselect", "score", "--help"])
    assert res.exit_code == 0 and "--model-path" in res.output and "--positive-label" in res.output
