"""The wheel a user installs works outside the checkout: the SQL and the demo spec ship in it, nothing else does.

The wheel is built from this checkout, installed with ``pip install --no-deps --target`` into a fresh
folder, and run from another directory with ``python -S``: no ``.pth`` file is processed, so the
editable install of the checkout is invisible and ``curate`` is the wheel's; the dependencies come from
this environment's site-packages, put on ``PYTHONPATH`` as plain folders.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(tmp / "dist"), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (wheel,) = (tmp / "dist").glob("curate-*.whl")
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(tmp / "site"),
                           str(wheel)], capture_output=True, text=True, timeout=600)
    assert inst.returncode == 0, inst.stdout[-3000:] + inst.stderr[-3000:]
    return tmp


def _run(tmp: Path, *args: str, input_path: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONPATH", "PREFECT_API"))}
    env.update(PYTHONPATH=os.pathsep.join([str(tmp / "site"), *site.getsitepackages()]),
               PREFECT_HOME=str(tmp / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    work = tmp / "elsewhere"
    work.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-S", *args], cwd=work, env=env, capture_output=True, text=True,
                          timeout=600)


def test_the_wheel_ships_the_sql_and_the_demo_spec_and_no_tools(installed):
    (wheel,) = (installed / "dist").glob("curate-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {n.removeprefix("curate/sql/") for n in names if n.startswith("curate/sql/")}
    assert shipped == {p.name for p in (ROOT / "sql").glob("*.sql")}
    for name in shipped:  # one source of truth: the top-level sql/ is the package's folder
        assert (installed / "site" / "curate" / "sql" / name).read_bytes() == (ROOT / "sql" / name).read_bytes()
    assert "flows/demo_mixture.yaml" in names and "curate/corpus/data/train.parquet" in names
    assert not [n for n in names if n.startswith(("tools/", "tests/", "benchmarks/"))]


def test_installed_curate_runs_from_another_directory(installed, real_docs):
    where = _run(installed, "-c", "import curate, flows, scorers; print(curate.__file__, flows.__file__)")
    assert where.returncode == 0 and str(installed / "site") in where.stdout and str(ROOT) not in where.stdout, where
    docs = installed / "elsewhere" / "docs.jsonl"
    docs.parent.mkdir(exist_ok=True)
    docs.write_text("".join(json.dumps({"id": d["id"], "text": d["text"], "domain": d["domain"]}) + "\n"
                            for d in real_docs) + "{broken\n")
    cli = ("-m", "curate.cli")
    ingest = _run(installed, *cli, "ingest", "docs.jsonl", "--store", "st", "--corpus", "c")
    assert ingest.returncode == 0 and "quarantined 1" in ingest.stdout, ingest.stdout + ingest.stderr
    score = _run(installed, *cli, "score", "--scorers", "heuristics", "--workers", "0", "--store", "st")
    assert score.returncode == 0 and "heuristics" in score.stdout, score.stdout[-2000:] + score.stderr[-3000:]
    sql = _run(installed, *cli, "sql", "SELECT count(*) AS n FROM doc_features WHERE n_words > 0", "--store", "st",
               "-f", "json")
    assert sql.returncode == 0 and json.loads(sql.stdout.strip().splitlines()[-1])["n"] == len(real_docs), sql
    spec = installed / "elsewhere" / "mix.yaml"
    spec.write_text("name: smoke\ntokens: 50000\nseed: 0\nselect: sql/dedup_exact.sql\n"
                    "weights: {math: 0.5, code: 0.5}\n")
    plan = _run(installed, *cli, "mix", "plan", "mix.yaml", "--store", "st")
    assert plan.returncode == 0 and "math" in plan.stdout, plan.stdout[-2000:] + plan.stderr[-2000:]
    band = _run(installed, "-c", "import curate.selection as s; print(len(s.band_doc_ids('st', 'n_words')))")
    assert band.returncode == 0 and int(band.stdout.strip()) > 0, band
