"""The README's first command: `curate demo` runs the whole pipeline on the embedded corpus."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from curate import connect
from curate.quiet import QUIET_ENV

pytestmark = pytest.mark.slow


def test_demo_runs_end_to_end_and_reruns_without_work(tmp_path):
    store = tmp_path / "demo-store"
    curate_bin = Path(sys.executable).parent / "curate"
    # the switches curate sets itself are taken out, so a quiet run proves the CLI sets them
    env = {k: v for k, v in os.environ.items() if k not in QUIET_ENV}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180")
    outputs, stamps, files = [], [], []
    for _ in range(2):
        log = tmp_path / f"demo-{len(outputs)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([str(curate_bin), "demo", "--store", str(store)], stdout=out, stderr=out,
                                    env=env, start_new_session=True)
            try:
                rc = proc.wait(timeout=1800)  # ~10 min idle; far more when other jobs share the cores
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        text = log.read_text(errors="replace")
        assert rc == 0, text[-3000:]
        outputs.append(text)
        stamps.append((store / "mates" / "demo" / "stage-0" / "stage.json").stat().st_mtime_ns)
        files.append(store_files(store))
    first, second = outputs
    for text in outputs:
        assert_quiet(text)
    assert "demo: done — read 25,183 = kept 25,183" in first
    assert "messy: done — read 309 = kept 300 + quarantined 7 + duplicates 2" in first
    assert "curate.MixtureDataset streams it" in first
    assert "selector validation AUC" in first and "what EL2N keeps at each end" in first
    assert "already-ingested" in second  # the re-run does no ingest work ...
    assert "8. MATES" in first and stamps[0] == stamps[1]  # ... nor MATES work (same proxy weights and settings)
    # ... nor any other: not one file of the store is written again (mixture and exports reused, scorers and
    # clustering up to date), so the static report is left as it is
    assert files[0] == files[1], sorted(set(files[0].items()) ^ set(files[1].items()))[:10]
    assert "is current (nothing in the store changed since it was written)" in " ".join(second.split())
    mates = json.loads((store / "mates" / "demo" / "stage-0" / "stage.json").read_text())
    assert mates["oracle"]["probes"] == 120 and mates["selection"]["kept"] == round(0.2 * mates["selection"]["pool"])
    con = connect(store)
    for table in ("heuristics", "langid", "domain", "perplexity", "el2n", "grand", "preselect"):  # ... and every document has exactly one row per scorer
        assert con.execute(f"SELECT count(*) = count(DISTINCT doc_id) AND count(*) = (SELECT count(*) FROM docs) "
                           f"FROM {table}").fetchone()[0]
    assert (store / "mixtures" / "demo-mix" / "domain_share.png").stat().st_size > 10_000
    assert "lineage: what step" in first and "the first of phase 'anneal'" in " ".join(first.split())
    assert "exported for trainers as megatron" in first and "exported for trainers as tokens" in first
    exports = json.loads((store / "mixtures" / "demo-mix" / "manifest.json").read_text())["exports"]
    assert exports["megatron"]["tokens"] == exports["tokens"]["tokens"] > 0  # the same stream, two layouts
    assert all(Path(p["prefix"] + ".idx").is_file() for p in exports["megatron"]["phases"])
    assert "10. near-duplicates" in first and "removable copies" in first  # real clusters of the embedded corpus
    clusters = con.execute("SELECT count(DISTINCT dup_cluster_id), count(*) FILTER (WHERE NOT dup_keep), "
                           "count(*) = (SELECT count(*) FROM docs) FROM near_dup").fetchone()
    assert clusters[0] > 100 and clusters[1] > 100 and clusters[2]
    assert "11. contamination" in first
    leaked = con.execute("SELECT count(*) FROM decontam JOIN docs USING (doc_id) WHERE contaminated AND corpus = 'demo'"
                         ).fetchone()[0]
    assert leaked > 0  # the embedded pool holds near-copies of held-out text (mails, Go licence headers, ...)
    assert "12. look at the data" in first  # the static report, written into the store
    assert (store / "report" / "index.html").is_file() and len(list((store / "report" / "doc").glob("*.html"))) == 40
    assert "what the selection kept" in first  # the mixture selects on PreSelect and perplexity ...
    scores = json.loads((store / "mixtures" / "demo-mix" / "scores.json").read_text())
    ps = scores["preselect_score"]
    assert ps["selected"]["docs"] < ps["pool"]["docs"] and ps["selected"]["median"] > ps["pool"]["median"]


def store_files(store: Path) -> dict[str, tuple[int, int]]:
    """Every file of the store but its lock files (taken by every run) -> (size, modification time)."""
    return {str(p.relative_to(store)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(store.rglob("*"))
            if p.is_file() and p.relative_to(store).parts[0] != "locks"}


#: a tqdm bar's rate field ("12.3it/s]", "4.56s/it]"): curate's own Rich bars never print one
THIRD_PARTY_BAR = re.compile(r"(it/s|s/it)\]")


def assert_quiet(text: str) -> None:
    """No traceback, no ERROR log line and no third-party progress bar in a run's output."""
    for line in text.splitlines():
        assert "Traceback" not in line and not re.search(r"\|\s*ERROR\s*\|", line), f"noise: {line}\n{text[-3000:]}"
        assert not THIRD_PARTY_BAR.search(line), f"a third-party progress bar: {line}"
