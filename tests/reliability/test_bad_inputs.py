"""Bad inputs the existing suites do not cover, each with the message a user sees and the good data kept.

Covered elsewhere (not repeated here): every JSONL line reason, 50 MB documents, binary and truncated
compressed files (tests/ingestion/test_quarantine.py); Parquet bad rows, missing text column and corrupt
footer (tests/ingestion/test_formats.py); duplicate ids (test_quarantine.py); unknown scorer and a
never-trained model (tests/engine/test_score.py); most spec mistakes (tests/mixture/test_spec.py);
a newer store format through the library (tests/core/test_store.py).
"""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from curate import connect, ingest
from curate.cli import app
from curate.execute import ScorerSetupError, run_scorer
from curate.store import FORMAT_VERSION
from scorers.registry import get_scorer
from tests.reliability.conftest import one_row_per_doc, tree_hashes

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("prefect_outside_clirunner")


def says(result, *texts: str) -> None:
    """Each text is in what the user saw; whitespace is ignored because rich folds long lines (and paths)."""
    flat = "".join(result.output.split())
    for text in texts:
        assert "".join(text.split()) in flat, (text, result.output)


# ----------------------------------------------------------------------------- model files


@pytest.mark.parametrize("content", [b"", os.urandom(4096)], ids=["empty", "garbage"])
def test_corrupt_domain_model_names_the_file_and_scores_nothing(content, sharded_store):
    model = sharded_store / "models" / "domain" / "model.bin"
    model.parent.mkdir(parents=True)
    model.write_bytes(content)
    r = runner.invoke(app, ["score", "--scorers", "domain", "--store", str(sharded_store), "--workers", "0"])
    assert r.exit_code == 2, r.output
    says(r, f"error: scorer 'domain' could not load: ValueError: {model} has wrong file format",
         "retrain or copy it again", "nothing was scored")
    assert not list((sharded_store / "features").glob("domain/*.parquet"))


def test_corrupt_model_on_ray_workers_fails_once_before_any_shard(sharded_store, tmp_path):
    from curate.execute import init_ray

    model = tmp_path / "classifier.bin"
    model.write_bytes(os.urandom(4096))
    ray = init_ray(num_cpus=2)
    try:
        with pytest.raises(ScorerSetupError) as exc:
            run_scorer(sharded_store, get_scorer("fasttext", model_path=str(model)), workers=2, retries=3)
    finally:
        ray.shutdown()
    assert f"scorer 'fasttext' could not load: ValueError: {model} has wrong file format" in str(exc.value)
    assert not (sharded_store / "features" / "fasttext").exists()  # no shard was tried, none recorded as failed



@pytest.mark.parametrize("kind", ["missing", "no_config", "a_file"])
def test_lm_path_that_is_not_a_checkpoint_is_refused_before_work(kind, sharded_store, tmp_path):
    ref = tmp_path / "ckpt"
    if kind == "no_config":
        ref.mkdir()
        (ref / "model.safetensors").write_bytes(b"weights without a config")
    elif kind == "a_file":
        ref.write_bytes(b"not a directory")
    r = runner.invoke(app, ["score", "--scorers", "perplexity", "--model", str(ref), "--workers", "0",
                            "--store", str(sharded_store)])
    assert r.exit_code == 2, r.output
    what = {"missing": "does not exist", "no_config": "holds no config.json", "a_file": "is not a directory"}[kind]
    says(r, f"error: model '{ref}' {what}: give a local Hugging Face checkpoint directory (with config.json and its "
            "weights), a model in the store's models/ (curate train-lm), or one of smollm2-135m")
    assert not (sharded_store / "features").exists()


def test_lm_checkpoint_with_corrupt_weights_names_the_error_and_scores_nothing(sharded_store, tmp_path):
    ref = tmp_path / "ckpt"
    ref.mkdir()
    (ref / "config.json").write_text('{"model_type": "llama"}')
    (ref / "model.safetensors").write_bytes(os.urandom(4096))  # a copy that went wrong
    r = runner.invoke(app, ["score", "--scorers", "perplexity", "--model", str(ref), "--workers", "0",
                            "--store", str(sharded_store)])
    assert r.exit_code == 2, r.output
    says(r, "error: scorer 'perplexity' could not load: SafetensorError: Error while deserializing header",
         "retrain or copy it again", "nothing was scored")
    assert not list((sharded_store / "features").glob("perplexity/*.parquet"))


# ----------------------------------------------------------------------------- ingest


def test_parquet_text_column_of_the_wrong_type(store_dir, tmp_path, real_docs):
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"text": [d["text"] for d in real_docs[:5]]}), good)
    numbers = tmp_path / "numbers.parquet"
    pq.write_table(pa.table({"text": [1, 2, 3], "id": ["a", "b", "c"]}), numbers)
    s = ingest([good, numbers], store_dir, "p", progress=False)
    assert (s.read, s.kept, s.quarantined) == (8, 5, 3) and s.reasons == {"wrong_type": 3}
    rows = connect(store_dir).execute("SELECT input, unit, position, detail FROM quarantine ORDER BY position").fetchall()
    assert rows == [(str(numbers), "row", i, "field 'text' is int, expected a string") for i in range(3)]


@pytest.mark.parametrize("text", ["\u00a0\u3000", "\u2028\u2029", "\x0b\x1c\x85"], ids=["nbsp", "separators", "controls"])
def test_unicode_whitespace_only_text_is_empty(text, store_dir, tmp_path, real_docs, write_jsonl):
    docs = [{"text": real_docs[0]["text"]}, {"text": text}, {"text": real_docs[1]["text"] + "\u00a0"}]
    s = ingest([write_jsonl(tmp_path / "ws.jsonl", docs)], store_dir, "c", progress=False)
    assert (s.kept, s.reasons) == (2, {"empty_text": 1})  # trailing NBSP on a real text is still a document
    detail = connect(store_dir).execute("SELECT position, detail FROM quarantine").fetchall()
    assert detail == [(2, "text is empty or only whitespace")]


# ----------------------------------------------------------------------------- the store itself


def test_store_from_a_newer_curate_is_refused_by_every_command(sharded_store, tmp_path, real_docs, write_jsonl):
    meta = json.loads((sharded_store / "store.json").read_text())
    (sharded_store / "store.json").write_text(json.dumps(meta | {"format": FORMAT_VERSION + 1}))
    before = tree_hashes(sharded_store)
    path = write_jsonl(tmp_path / "new.jsonl", [{"text": real_docs[0]["text"] + " new"}])
    for args in (["stats"], ["sql", "SELECT 1"], ["score", "--scorers", "heuristics", "--workers", "0"],
                 ["ingest", str(path), "--corpus", "c"]):
        r = runner.invoke(app, [*args, "--store", str(sharded_store)])
        assert r.exit_code == 2, (args, r.output)
        says(r, f"has format {FORMAT_VERSION + 1}, newer than this curate supports ({FORMAT_VERSION}): "
                "upgrade curate to read it")
    assert tree_hashes(sharded_store) == before  # nothing was written into it


def _without_locks(hashes: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in hashes.items() if not k.startswith("locks/")}  # empty advisory files, no data


@pytest.mark.parametrize("rel", ["store.json", "shards/c/_manifest.json"])
def test_damaged_store_metadata_names_the_file_and_says_restore(rel, sharded_store):
    (sharded_store / rel).write_text('{"format": 1, "corp')
    before = tree_hashes(sharded_store)
    r = runner.invoke(app, ["score", "--scorers", "heuristics", "--workers", "0", "--store", str(sharded_store)])
    assert r.exit_code == 2, r.output
    says(r, f"{sharded_store / rel} is not valid JSON", "restore it from a backup or another copy of the store")
    assert _without_locks(tree_hashes(sharded_store)) == _without_locks(before)


def test_damaged_feature_manifest_is_rebuilt_from_the_files(sharded_store):
    run_scorer(sharded_store, get_scorer("heuristics"), workers=0)
    manifest = sharded_store / "features" / "heuristics" / "_manifest.json"
    manifest.write_text("garbage{")
    report = run_scorer(sharded_store, get_scorer("heuristics"), workers=0)
    assert (report.done, report.skipped) == (0, 6)
    shards = json.loads(manifest.read_text())["shards"]
    assert len(shards) == 6 and {s["status"] for s in shards.values()} == {"done"}
    assert sum(s["rows"] for s in shards.values()) == 300


def test_damaged_feature_file_is_named_by_queries_and_recomputed_alone(sharded_store):
    run_scorer(sharded_store, get_scorer("heuristics"), workers=0)
    bad = sharded_store / "features" / "heuristics" / "c--part-00003.parquet"
    bad.write_bytes(bad.read_bytes()[:200])  # cut short, as by a copy that stopped
    r = runner.invoke(app, ["sql", "SELECT count(*) FROM heuristics", "--store", str(sharded_store)])
    assert r.exit_code == 2, r.output
    says(r, "cannot open the views of store", bad.name, "A feature file in the store is damaged",
         "re-run `curate score` for that scorer")
    report = run_scorer(sharded_store, get_scorer("heuristics"), workers=0)
    assert (report.done, report.skipped) == (1, 5)
    one_row_per_doc(sharded_store, "heuristics")



def test_damaged_document_shard_is_named_by_score_and_ingest(sharded_store, tmp_path, real_docs, write_jsonl):
    shard = sharded_store / "shards" / "c" / "part-00002.parquet"
    good = shard.read_bytes()
    shard.write_bytes(good[: len(good) // 2])  # cut short, as by a copy that stopped
    report = run_scorer(sharded_store, get_scorer("heuristics"), workers=0, retries=0)
    assert report.done == 5  # the other shards are scored and kept
    [failed] = report.failed
    assert failed["shard"] == "shards/c/part-00002.parquet"
    assert failed["error"].startswith(f"curate.store.StoreError: {shard} is damaged or unreadable (ArrowInvalid: ")
    assert failed["error"].endswith("it was changed outside curate; restore it from a backup or another copy of the "
                                    "store (or ingest the original inputs into a new store)")
    # ingest reads every shard's ids (to skip documents already in the corpus), so it names the shard too
    more = write_jsonl(tmp_path / "more.jsonl", [{"text": d["text"]} for d in real_docs[300:]])
    before = tree_hashes(sharded_store)
    r = runner.invoke(app, ["ingest", str(more), "--store", str(sharded_store), "--corpus", "c"])
    assert r.exit_code == 2, r.output
    says(r, f"error: {shard} is damaged or unreadable (ArrowInvalid:", "restore it from a backup")
    assert _without_locks(tree_hashes(sharded_store)) == _without_locks(before)
    shard.write_bytes(good)  # restored from a copy: the rerun scores exactly that shard
    report = run_scorer(sharded_store, get_scorer("heuristics"), workers=0)
    assert (report.done, report.skipped) == (1, 5)
    assert one_row_per_doc(sharded_store, "heuristics") == 300


# ----------------------------------------------------------------------------- mixture specs

SPEC_MISTAKES = {
    "yaml_syntax": ("name: m\ntokens: 1000\nweights: {code: 1\n", ["not valid YAML", "line 3, column 10"]),
    "missing_field": ("name: m\nweights: {code: 1}\n", ["tokens: missing: this field is required"]),
    "tokens_with_a_suffix": ("name: m\ntokens: 1M\nweights: {code: 1}\n",
                             ["tokens: Input should be a valid integer", "(got '1M')"]),
    "weight_not_a_number": ("name: m\ntokens: 1000\nweights: {code: lots}\n",
                            ["weights.code: Input should be a valid number", "(got 'lots')"]),
    "no_weights": ("name: m\ntokens: 1000\nweights: {}\n", ["weights: no domain weights given", "e.g. {web: 0.7"]),
    "empty_file": ("", ["a mixture spec is a mapping (name, tokens, weights, ...), got an empty file"]),
}


@pytest.mark.parametrize("case", sorted(SPEC_MISTAKES))
def test_mixture_spec_mistakes_name_the_file_and_field(case, sharded_store, tmp_path):
    text, words = SPEC_MISTAKES[case]
    spec = tmp_path / f"{case}.yaml"
    spec.write_text(text)
    r = runner.invoke(app, ["mix", "plan", str(spec), "--store", str(sharded_store)])
    assert r.exit_code == 2, r.output
    says(r, f"error: {spec}", *words)
