"""The tiny experiment end to end: equal tokens, curves, MATES on the live model, report files, reuse, refusals."""

from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from curate.cli import app
from curate.errors import ConfigError
from curate.experiment import METHODS, run_experiment
from curate.experiment.scales import get_scale

SCALE = get_scale("tiny")


def _runs(result):
    return {(r["method"], r["seed"]): r for r in result["runs"]}


def test_every_method_trains_the_same_tokens_and_is_measured_at_the_budget(tiny):
    result = tiny[0]
    runs = _runs(result)
    assert {m for m, _ in runs} == set(METHODS) and [s for m, s in runs if m == "random"] == [0, 1]
    for (method, _), r in runs.items():
        expect = SCALE.random_tokens if method == "random" else SCALE.budget
        assert r["tokens"] == expect, method
        points = [p["tokens"] for p in r["curve"]]
        assert points == SCALE.eval_points(expect) and SCALE.budget in points, method
        assert all(0 < p["bits_per_byte"] < 8.5 for p in r["curve"])
        assert r["curve"][-1]["loss"] == r["loss"]  # the last point is the saved model's held-out loss
    # one comparison row per run, each with a multiplier (random seeds against each other)
    assert len(result["comparison"]) == len(result["runs"])
    assert all(row["multiplier"]["text"].endswith("×") for row in result["comparison"])
    # two random seeds (initialisation and draw order) give two curves: their gap is the noise floor
    assert runs[("random", 0)]["curve"] != runs[("random", 1)]["curve"]


def test_mates_starts_as_random_then_selects_with_the_live_model(tiny):
    result, store = tiny[0], tiny[1]
    mates, random0 = _runs(result)[("mates", 0)], _runs(result)[("random", 0)]
    first, second = mates["stages"]
    assert first["selection"] == "random" and second["selection"] == "mates"
    # stage 0 is random seed 0's draw from the same initialisation: identical curve up to the boundary
    same = [p for p in random0["curve"] if p["tokens"] <= first["tokens"]]
    assert same and mates["curve"][:len(same)] == same
    assert mates["curve"][len(same):] != random0["curve"][len(same):len(mates["curve"])]
    # stage 1 chose through a MATES stage whose artifacts are in the store
    stage = json.loads((store / second["dir"] / "stage.json").read_text())
    assert stage["proxy"] == "live model" and stage["oracle"]["probes"] == SCALE.mates_probes
    assert stage["oracle"]["moments"] == "optimizer"  # the probe step started from the job's Adam moments
    kept = pq.read_table(store / second["dir"] / "selection.parquet").num_rows
    assert kept == second["kept"] and second["docs"] <= kept


def test_report_files_are_written(tiny):
    result, out = tiny[0], tiny[2]
    assert (out / "loss_vs_tokens.png").read_bytes()[:4] == b"\x89PNG"
    report = (out / "report.md").read_text()
    for method in METHODS:
        assert f"| {method}" in report or f"| random (seed" in report
    assert "token multiplier" in report and "Noise floor" in report and "loss_vs_tokens.png" in report
    saved = json.loads((out / "results.json").read_text())
    assert saved["comparison"] == result["comparison"] and saved["config"]["scale"]["name"] == "tiny"
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(
        f"{m}-s{s}.json" for m, s in _runs(result))


def test_rerun_reuses_finished_runs(tiny, tmp_path):
    result, store, out, _ = tiny
    shutil.copytree(out, tmp_path / "out")
    lines: list[str] = []
    again = run_experiment(store, tmp_path / "out", scale="tiny", methods="preselect,two-phase", log=lines.append)
    assert sum("reused" in line for line in lines) == 4 and not any("training" in line for line in lines)
    by = {(r["method"], r["seed"]): r for r in again["comparison"]}
    for row in result["comparison"]:
        if (row["method"], row["seed"]) in by:
            assert by[(row["method"], row["seed"])] == row


def test_cli_prints_the_table_and_writes_the_report(tiny, tmp_path):
    _, store, out, _ = tiny
    shutil.copytree(out, tmp_path / "out")
    res = CliRunner().invoke(app, ["experiment", "--scale", "tiny", "--store", str(store), "--out",
                                   str(tmp_path / "out"), "--methods", "el2n-easy"])
    assert res.exit_code == 0, res.output
    assert "reused" in res.output and "token multiplier" in res.output and "el2n-easy" in res.output
    assert "Noise floor" in res.output and "report.md" in res.output
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["config"]["methods"] == ["random", "el2n-easy"]
    assert saved["command"].startswith("curate experiment --scale tiny --store ")


def test_bad_names_are_refused_before_any_work(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["experiment", "--scale", "tiny", "--store", str(tmp_path / "s"), "--out",
                              str(tmp_path / "o"), "--methods", "random,mates,bogus"])
    assert res.exit_code == 2 and "bogus" in res.output and "choose from" in res.output
    res = runner.invoke(app, ["experiment", "--scale", "huge", "--store", str(tmp_path / "s")])
    assert res.exit_code == 2 and "huge" in res.output
    assert not (tmp_path / "s").exists() and not (tmp_path / "o").exists()
    help_text = runner.invoke(app, ["experiment", "--help"]).output
    assert "multiplier" in help_text and "--methods" in help_text and "--scale" in help_text


def test_a_feature_table_that_misses_the_pool_is_refused_with_the_command(tiny, tmp_path, real_docs):
    from curate import ingest
    from curate.embedded import write_jsonl

    store = tmp_path / "store"
    shutil.copytree(tiny[1], store)
    extra = write_jsonl(tmp_path / "more.jsonl", [{"id": d["id"], "text": d["text"], "domain": d["domain"]}
                                                  for d in real_docs[:30]])
    ingest([extra], store, "more", progress=False)
    with pytest.raises(ConfigError, match=r"el2n.*for 0 of 30 documents of corpus 'more'.*curate score"):
        run_experiment(store, tmp_path / "out", scale="tiny", pool="more", methods="el2n-hard", log=lambda m: None)
    assert not (tmp_path / "out").exists()
