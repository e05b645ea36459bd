"""A mixture counted in a Hugging Face tokenizer's tokens: counts stored once, ids in the parts, streamed."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curate import connect
from curate.errors import ConfigError
from curate.execute import run_scorer
from curate.mixture import build_mixture, load_spec, plan_mixture
from curate.mixture.loader import MixtureDataset
from curate.mixture.token_counts import TokenCountScorer
from tests.mixture._specs import bpe_tokenizer, spec_dict

WEIGHTS = {"web": 0.4, "code": 0.3, "math": 0.3}


@pytest.fixture(scope="module")
def bpe_dir(tmp_path_factory, real_docs) -> Path:
    """A real byte-level BPE tokenizer (1,000 ids) trained on the test documents, saved as HF files."""
    return bpe_tokenizer([d["text"] for d in real_docs], tmp_path_factory.mktemp("bpe"))


def _spec(bpe_dir: Path, **over):
    d = spec_dict(name="hf", tokenizer=str(bpe_dir), tokens=60_000, weights=WEIGHTS,
                  phases=[{"name": "main", "fraction": 0.8},
                          {"name": "anneal", "fraction": 0.2, "weights": {"math": 0.5, "code": 0.5}}])
    d.update(over)
    return load_spec(d)


def test_plan_counts_tokens_once_and_meets_targets_in_tokens(mix_store, bpe_dir):
    plan = plan_mixture(mix_store, _spec(bpe_dir))
    con = connect(mix_store)
    n_docs, n_rows, bytes_, tokens = con.execute(
        "SELECT (SELECT count(*) FROM docs), count(*), sum(d.n_bytes), sum(t.token_count) "
        "FROM tokens t JOIN docs d USING (doc_id)").fetchone()
    assert n_rows == n_docs  # one count per document
    assert 1.5 < bytes_ / tokens < 8  # a BPE token covers a few bytes: these are not byte counts
    biggest = dict(con.execute("SELECT d.domain, max(t.token_count) FROM tokens t JOIN docs d USING (doc_id) "
                               "GROUP BY 1").fetchall())
    for c in plan.cells:
        assert c.shortfall == 0 and abs(c.tokens - c.target) <= biggest[c.domain] / 2 + 1, c
    # the same tokenizer again: every shard is already counted
    report = run_scorer(mix_store, TokenCountScorer(tokenizer=str(bpe_dir)), workers=0, progress=False)
    assert report.done == 0 and report.skipped > 0


def test_parts_carry_the_ids_and_the_loader_streams_them(mix_store, bpe_dir):
    from transformers import AutoTokenizer

    m = build_mixture(mix_store, _spec(bpe_dir), report=False)
    info = m.data["tokenizer_info"]
    tok = AutoTokenizer.from_pretrained(str(bpe_dir))
    assert info["eos_token_id"] == tok.eos_token_id and info["vocab_size"] == len(tok) and "path" not in info
    part = pq.read_table(Path(m.store.path(m.dir, m.parts[0]["name"]))).to_pylist()
    for row in part[:20]:
        assert len(row["token_ids"]) == row["n_tokens"]
        assert tok.decode(row["token_ids"]) == row["text"]  # byte-level BPE round-trips the stored text
    assert m.data["tokens"]["planned"] == sum(len(r["token_ids"]) for p in m.parts
                                              for r in pq.read_table(Path(m.store.path(m.dir, p["name"])),
                                                                     columns=["token_ids"]).to_pylist())
    ds = MixtureDataset(mix_store, "hf", seq_len=64)
    assert ds.eos_id == tok.eos_token_id and ds.vocab_size == len(tok)
    stream = [int(x) for w in ds for x in w]  # windows are consecutive slices of the stream
    first = part[0]["token_ids"] + [tok.eos_token_id] + part[1]["token_ids"]
    assert stream[:len(first)] == first[:len(stream)]
    assert len(stream) == ds.total_windows * 65 and max(stream) < len(tok)


def test_a_tokenizer_that_is_not_there_is_refused_before_any_work(mix_store):
    with pytest.raises(ConfigError, match=r"tokenizer: '/no/such/tokenizer' is not 'bytes', a directory"):
        plan_mixture(mix_store, load_spec(spec_dict(tokenizer="/no/such/tokenizer")))
