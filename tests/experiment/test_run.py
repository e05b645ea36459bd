"""The tiny experiment end to end: every run on every target, intervals, MATES on the live model, report, reuse."""

from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from curate.cli import app
from curate.errors import ConfigError
from curate.experiment import METHODS, TARGETS, run_experiment
from curate.experiment.scales import get_scale

SCALE = get_scale("tiny")
TARGET_AWARE = {m for m, spec in METHODS.items() if spec.per_target}


def _runs(result):
    return {r["key"]: r for r in result["runs"]}


def test_every_run_trains_its_points_and_is_measured_on_every_target(tiny):
    result = tiny[0]
    runs = _runs(result)
    expect = {f"{m}-s{s}" for m in METHODS if m not in TARGET_AWARE for s in (0, 1)}
    expect |= {f"{m}@{t}-s{s}" for m in TARGET_AWARE for t in TARGETS for s in (0, 1)
               if not (m == "oracle" and t == "mixed")}  # the in-distribution oracle is random itself
    assert set(runs) == expect
    groups = {f"target:{t}" for t in TARGETS}
    for key, r in runs.items():
        ends = SCALE.points(SCALE.random_points if r["method"] == "random" else SCALE.method_points)
        assert [p["steps"] for p in r["points"]] == ends, key
        assert r["points"][-1]["tokens"] == ends[-1] * SCALE.step_tokens
        for p in r["points"]:
            assert groups <= set(p["bits_per_byte"]) and any(k.startswith("domain:") for k in p["bits_per_byte"])
            assert all(0 < v < 12 for v in p["bits_per_byte"].values())
            assert p["branch_start"] == p["steps"] - -(-p["steps"] * 2 // 10)  # the last 20% decayed
    # two seeds of random differ (data windows and initialisation): that spread is the noise gate
    assert runs["random-s0"]["points"] != runs["random-s1"]["points"]


def test_each_target_compares_its_methods_with_random(tiny):
    result = tiny[0]
    assert set(result["comparison"]) == set(TARGETS)
    for name, cmp in result["comparison"].items():
        methods = [r["method"] for r in cmp["rows"]]
        assert methods[0] == "random" and set(methods) == set(METHODS) - ({"oracle"} if name == "mixed" else set())
        assert cmp["random_std"] > 0 and cmp["noise_gate"] == 0.03
        for row in cmp["rows"]:
            assert len(row["seeds"]) == 2 and row["multiplier"]["text"].endswith("×)")  # an interval from 2 seeds
            assert row["trained_on"] and abs(sum(row["trained_on"].values()) - 1) < 0.01
        two = next(r for r in cmp["rows"] if r["method"] == "two-phase")
        assert two["vs_random_paired"]["paired"] and two["vs_random_paired"]["low"] is not None
    oracle = next(r for r in result["comparison"]["math-code"]["rows"] if r["method"] == "oracle")
    assert set(oracle["trained_on"]) == {"math", "code"}
    assert result["overlap"]["threshold"] == 0.5 and "pool_docs_excluded" in result["overlap"]


def test_mates_starts_as_random_then_selects_with_the_live_model_against_the_target(tiny):
    result, store = tiny[0], tiny[1]
    mates = _runs(result)["mates@math-code-s0"]
    first, second = mates["draw"]["stages"]
    assert first["selection"] == "random" and second["selection"] == "mates"
    stage = json.loads((store / second["dir"] / "stage.json").read_text())
    assert stage["proxy"] == "live model" and stage["oracle"]["probes"] == SCALE.mates_probes
    assert stage["oracle"]["moments"] == "optimizer"  # the probe step started from the job's Adam moments
    assert "md5_number" in stage["config"]["reference_sql"]  # the target's reference half
    kept = pq.read_table(store / second["dir"] / "selection.parquet").num_rows
    assert kept == second["kept"]
    row = next(r for r in result["comparison"]["math-code"]["rows"] if r["method"] == "mates")
    assert list(row["spearman_by_stage"]) == [1]


def test_report_files_are_written(tiny):
    result, out = tiny[0], tiny[2]
    report = (out / "report.md").read_text()
    for t in TARGETS:
        assert f"## Target `{t}`" in report and (out / f"loss_vs_tokens-{t}.png").read_bytes()[:4] == b"\x89PNG"
    assert "token multiplier" in report and "Noise: random's seed std" in report and "near-copies" in report
    saved = json.loads((out / "results.json").read_text())
    assert saved["comparison"] == json.loads(json.dumps(result["comparison"]))
    assert sorted(p.stem for p in (out / "runs").iterdir()) == sorted(_runs(result))
    # the report is also copied into the store, where `curate browse` and `curate report` show it
    published = tiny[1] / "experiments" / "tiny"
    assert result["files"]["store"] == "experiments/tiny"
    assert (published / "report.md").read_text() == report
    assert {p.name for p in published.glob("*.png")} == {f"loss_vs_tokens-{t}.png" for t in TARGETS}


def test_rerun_reuses_finished_runs(tiny, tmp_path):
    result, store, out, _ = tiny
    shutil.copytree(out, tmp_path / "out")
    lines: list[str] = []
    again = run_experiment(store, tmp_path / "out", scale="tiny", methods="oracle", targets="prose",
                           log=lines.append)
    assert any("4 run(s) finished earlier" in line for line in lines) and not any("] " in line for line in lines)
    row = next(r for r in again["comparison"]["prose"]["rows"] if r["method"] == "oracle")
    assert row == next(r for r in result["comparison"]["prose"]["rows"] if r["method"] == "oracle")


def test_cli_prints_a_table_per_target_and_writes_the_report(tiny, tmp_path):
    _, store, out, _ = tiny
    shutil.copytree(out, tmp_path / "out")
    res = CliRunner().invoke(app, ["experiment", "--scale", "tiny", "--store", str(store), "--out",
                                   str(tmp_path / "out"), "--methods", "el2n-easy", "--target", "mixed",
                                   "--target", "prose"])
    assert res.exit_code == 0, res.output
    assert "finished earlier" in res.output and "target prose" in res.output and "el2n-easy" in res.output
    assert "Noise: random's seed std" in res.output and "report.md" in res.output
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["config"]["methods"] == ["random", "el2n-easy"] and list(saved["comparison"]) == ["mixed", "prose"]
    assert saved["command"].startswith("curate experiment --scale tiny --store ") and "--target prose" in saved["command"]


def test_bad_names_are_refused_before_any_work(tmp_path):
    runner = CliRunner()
    for args, message in ((["--methods", "random,mates,bogus"], "bogus"), (["--target", "benchmark"], "benchmark"),
                          (["--scale", "huge"], "huge"), (["--share", "1.5"], "--share")):
        res = runner.invoke(app, ["experiment", "--scale", "tiny", "--store", str(tmp_path / "s"), "--out",
                                  str(tmp_path / "o"), *args])
        assert res.exit_code == 2 and message in res.output and len(res.output.strip().splitlines()) <= 3, res.output
    assert not (tmp_path / "s").exists() and not (tmp_path / "o").exists()
    help_text = " ".join(CliRunner().invoke(app, ["experiment", "--help"]).output.split())
    assert "multiplier" in help_text and "--target" in help_text and "--seeds" in help_text
    assert "--share" in help_text


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


def _pool_workers(marker: str) -> set[int]:
    """Run processes (multiprocessing spawn children) whose environment carries ``marker``."""
    from pathlib import Path

    from tests.engine._procs import pids_with_env

    found = set()
    for pid in pids_with_env(marker):
        try:
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.add(pid)
        except OSError:
            continue
    return found


@pytest.mark.skipif(not __import__("pathlib").Path("/proc/self/environ").exists(), reason="reads /proc")
def test_run_processes_exit_when_the_experiment_is_killed(tiny, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    import uuid

    marker = f"curate-exp-{uuid.uuid4().hex}"
    code = (f"from curate.experiment import run_experiment; run_experiment({str(tiny[1])!r}, "
            f"{str(tmp_path / 'out')!r}, scale='tiny', methods='random,el2n-hard', jobs=2, log=print)")
    parent = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "CURATE_TEST_CHILD": marker},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 180
        while len(workers) < 2 and time.monotonic() < deadline and parent.poll() is None:
            time.sleep(0.2)
            workers = _pool_workers(marker)
        assert len(workers) == 2, "the experiment never started its two run processes"
        parent.send_signal(signal.SIGKILL)  # no clean-up of its own: the runs must notice
        parent.wait()
        deadline = time.monotonic() + 20
        while _pool_workers(marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _pool_workers(marker), "run processes outlived the killed experiment"
    finally:
        parent.kill()
        for pid in _pool_workers(marker):
            os.kill(pid, signal.SIGKILL)
