"""A real store to browse (real documents, a planted ``<script>`` one, quarantined lines, heuristics scores,
near-duplicate clusters), ``curate browse`` serving it on a free loopback port, and headless Chromium."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from curate import ingest
from curate.dedup.cluster import cluster_near_duplicates
from curate.domain import train_domain
from curate.embedded import write_jsonl as write_jsonl_file
from curate.execute import run_scorer
from curate.mixture import build_mixture, load_spec
from curate.mixture.token_counts import TokenCountScorer
from scorers.heuristics import HeuristicsScorer
from scorers.minhash import MinHashScorer
from tests.mixture._specs import bpe_tokenizer, spec_dict

# Debian's packages put them here; CURATE_CHROMIUM / CURATE_CHROMEDRIVER point elsewhere
CHROMIUM = os.environ.get("CURATE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CURATE_CHROMEDRIVER", "/usr/bin/chromedriver")
INSTALL_HINT = ("install them with `apt-get install -y chromium chromium-driver` (Debian/Ubuntu; .ci/run does it), "
                "or point CURATE_CHROMIUM and CURATE_CHROMEDRIVER at a Chromium and its matching chromedriver")

# sets a global if it ever runs, so a test can tell text from executed markup
PLANTED = ('Release notes <script>window.__planted = "script ran";</script> and '
           '<img src="x" onerror="window.__planted = \'onerror ran\'"> must show as text.')


@pytest.fixture(scope="session")
def browse_store(tmp_path_factory, real_docs) -> Path:
    """Real documents of every domain, the planted one, a near-copy of one document (a cluster), two
    malformed lines (quarantine), scored by the heuristics and MinHash scorers and clustered, counted in a
    real BPE tokenizer's tokens, a small fastText domain model and a two-phase mixture."""
    tmp = tmp_path_factory.mktemp("browse")
    records = [{"id": d["id"], "text": d["text"], "domain": d["domain"]} for d in real_docs]
    long_doc = max(real_docs, key=lambda d: len(d["text"]))
    records.append({"id": "near-copy", "text": long_doc["text"] + "\nA line added to the copy.",
                    "domain": long_doc["domain"]})
    records.append({"id": "planted-script", "text": PLANTED, "domain": "web"})
    path = write_jsonl_file(tmp / "in.jsonl", records, raw_lines={3: b"{broken", 10: b"[1, 2]"})
    store = tmp / "store"
    ingest([path], store, "c", shard_rows=100, progress=False)
    tokenizer = bpe_tokenizer([d["text"] for d in real_docs], tmp / "bpe")  # for the `tokens` table
    for scorer in (HeuristicsScorer(), MinHashScorer(), TokenCountScorer(tokenizer=str(tokenizer))):
        report = run_scorer(store, scorer, workers=0)
        assert not report.failed
    cluster_near_duplicates(store)
    train_domain(store, dim=16, epoch=2, bucket=10_000, threads=1)  # a real model and card for /models
    build_mixture(store, load_spec(spec_dict(name="browse-mix", tokens=200_000)))  # report, plots, plan
    return store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(browse_store: Path) -> Iterator[str]:
    """``curate browse`` itself, in a subprocess on a free loopback port; yields its base URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "curate.cli", "browse", "--store", str(browse_store),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90  # a loaded 2-core machine imports FastAPI and DuckDB slowly
    while True:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                if r.read() == b"ok":
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"curate browse did not start: {proc.communicate()[0]}")
        time.sleep(0.2)
    yield base
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends: the server stops cleanly, closing its connections
    try:
        out = proc.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("curate browse did not stop on Ctrl-C within 30 s")
    assert "Traceback" not in out and "FATAL" not in out, out


@pytest.fixture(scope="session")
def driver():
    """Headless Chromium through Selenium, with the chromedriver named (Selenium Manager never downloads)."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (os.path.exists(p) or shutil.which(p))]
    if missing:
        pytest.fail(f"the browser tests need Chromium and chromedriver; missing {', '.join(missing)}: {INSTALL_HINT}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # --no-sandbox: Chromium refuses to run as root (CI containers) with its sandbox on;
    # --disable-dev-shm-usage: containers' /dev/shm is often 64 MB, too small for a renderer
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    drv = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()
