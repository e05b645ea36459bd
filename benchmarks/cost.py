"""``cost``: what scoring costs, per scorer, in core-seconds per GB of text and per billion tokens.

The numbers a user plans a run with. Each scorer runs as the engine runs it (``curate.shards.score_shard``:
read the shard, score, write the feature file atomically) in this process on **one core** (torch, BLAS and
tokenizers at one thread), after its model is loaded (timed apart as start-up), over a sample of the
embedded real corpus sized so each takes seconds to a minute. Models are the demo's own: the store that
``make demo`` made (``demo-store``, read-only: its ``models/`` are copied), or, when there is none, one this
benchmark builds once in ``bench-out/cache/demo-store`` with the demo flow (~10 minutes).

- per GB: core-seconds ÷ GB of UTF-8 text scored; core-hours per TB = that × 1000 / 3600.
- per billion tokens: the same seconds ÷ the sample's tokens under SmolLM2's tokenizer (a 49k-entry BPE, so
  "tokens" are LLM tokens, not bytes).
- LM scorers read only the first ``max_tokens`` tokens of each document (their default caps; byte-level
  models: bytes), so their cost per GB falls as documents grow; the row says the cap.

ratio = this scorer's cost ÷ heuristics' cost (how many times the cheapest full-text pass); no goal: a cost
is a number to plan with, not a pass/fail.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from benchmarks._common import CACHE, build_store, corpus_table, log, row, text_mb

#: (scorer, settings, sample MB, --quick sample MB, what the row says about it)
SCORERS: list[tuple[str, dict[str, Any], float, float, str]] = [
    ("heuristics", {}, 16.0, 2.0, "Gopher/C4/FineWeb-style quality and repetition features"),
    ("langid", {}, 16.0, 2.0, "fastText lid.176 language id"),
    ("domain", {}, 16.0, 2.0, "fastText domain classifier (the demo's)"),
    ("preselect", {"model": "preselect"}, 16.0, 2.0, "PreSelect fastText selector (the demo's)"),
    ("minhash", {}, 16.0, 2.0, "MinHash band hashes, word 5-grams, 14x8"),
    ("tokens", {"tokenizer": "smollm2"}, 8.0, 2.0, "token counts, SmolLM2 tokenizer"),
    ("perplexity", {"model": "tiny-lm"}, 1.0, 0.25, "tiny-lm (0.9M params, byte-level), first 1,024 tokens"),
    ("el2n", {"model": "proxy"}, 1.0, 0.25, "2 proxy LMs (byte-level), first 512 tokens"),
    ("grand", {"model": "proxy"}, 0.5, 0.1, "2 proxy LMs, per-example gradient norms, first 256 tokens"),
    ("perplexity", {"model": "smollm2-135m", "max_tokens": 512}, 0.1, 0.03,
     "SmolLM2-135M (bf16 where the CPU has it), first 512 tokens"),
]
SHARD_ROWS = 512


def _one_core() -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    import torch

    torch.set_num_threads(1)


def models_store() -> Path:
    """A store holding the demo's models: ``demo-store`` when ``make demo`` made one, else built here once."""
    for candidate in (Path("demo-store"), CACHE / "demo-store"):
        if (candidate / "models" / "tiny-lm").is_dir() and (candidate / "models" / "preselect").is_dir():
            return candidate
    from flows.demo import demo_flow

    log("cost: no demo store with models; building one with the demo flow (~10 minutes, once)")
    demo_flow(str(CACHE / "demo-store"))
    return CACHE / "demo-store"


def _tokenizer_dir() -> str:
    from curate.lm.builtin import SMOLLM2, builtin_path

    return str(builtin_path(SMOLLM2))


def _count_tokens(table: Any, tokenizer: str) -> int:
    from curate.mixture.token_counts import load_fast_tokenizer

    tok = load_fast_tokenizer(tokenizer)
    return sum(len(e.ids) for b in table.to_batches(1024)
               for e in tok.encode_batch(b.column("text").to_pylist(), add_special_tokens=False))


def measure(name: str, settings: dict[str, Any], mb: float, models: Path, tokenizer: str) -> dict[str, Any]:
    """One scorer over a sample of ``mb`` text MB on one core: start-up and scoring seconds, sizes."""
    from curate.shards import plan, score_shard
    from curate.scoring import scorer_fingerprint
    from curate.store import Store
    from scorers.registry import build_scorer

    table = corpus_table(False, max_mb=mb)
    store, info = build_store(f"cost-{mb:g}mb", table, SHARD_ROWS)
    shutil.copytree(models / "models", store / "models", dirs_exist_ok=True)
    st = Store.open(str(store))
    settings = {k: (tokenizer if v == "smollm2" else v) for k, v in settings.items()}
    scorer = build_scorer(st, name, **settings)
    t0 = time.perf_counter()
    scorer.setup()
    startup = time.perf_counter() - t0
    shutil.rmtree(store / "features" / scorer.name, ignore_errors=True)
    items, _ = plan(st, scorer.name, scorer_fingerprint(scorer), ["bench"])
    warm, _ = plan(st, scorer.name, scorer_fingerprint(scorer), ["warmup"])
    for item in warm:
        score_shard(st, scorer, item)  # first-call costs (kernels, caches) out of the timed part
    t0 = time.perf_counter()
    rows = sum(score_shard(st, scorer, item).rows for item in items)
    seconds = time.perf_counter() - t0
    shutil.rmtree(store / "features" / scorer.name, ignore_errors=True)
    return {"docs": rows, "mb": text_mb(table), "seconds": seconds, "startup_s": startup,
            "tokens": _count_tokens(table, tokenizer), "shards": info["shards"]}


def run(quick: bool) -> list[dict[str, Any]]:
    from curate.quiet import quiet_third_party

    quiet_third_party(False)  # transformers' weight-loading bars would interleave with the log
    _one_core()
    models = models_store()
    tokenizer = _tokenizer_dir()
    measured: list[tuple[str, dict[str, Any], str]] = []
    for name, settings, mb, mb_quick, what in SCORERS:
        label = name if "model" not in settings or name != "perplexity" else f"perplexity {settings['model']}"
        log(f"cost: {label} on {mb_quick if quick else mb:g} MB, one core")
        try:
            m = measure(name, settings, mb_quick if quick else mb, models, tokenizer)
        except Exception as exc:  # noqa: BLE001 - one scorer's failure is a row, not the end of the suite
            measured.append((label, {"error": f"{type(exc).__name__}: {exc}"}, what))
            continue
        m["core_s_per_gb"] = m["seconds"] / (m["mb"] / 1e3)
        m["core_s_per_btok"] = m["seconds"] / (m["tokens"] / 1e9)
        m["core_h_per_tb"] = m["core_s_per_gb"] * 1000 / 3600
        measured.append((label, m, what))
    base = next((m["core_s_per_gb"] for label, m, _ in measured if label == "heuristics" and "error" not in m), None)
    rows = []
    for label, m, what in measured:
        if "error" in m:
            rows.append(row(f"cost {label}", what, docs=None, mb=None, cores=1, ours=None, baseline=None,
                            unit="core-s/GB", note=m["error"], details=m))
            continue
        rows.append(row(
            f"cost {label}", f"{what}; core-seconds per GB of text (ratio: x heuristics' cost)",
            docs=m["docs"], mb=m["mb"], cores=1, ours=m["core_s_per_gb"], baseline=base, unit="core-s/GB",
            note=(f"{m['core_s_per_btok']:,.0f} core-s per billion SmolLM2 tokens of text; {m['core_h_per_tb']:,.1f} "
                  f"core-hours per TB of text; start-up {m['startup_s']:.2f} s; {m['seconds']:.1f} s for "
                  f"{m['mb']:.2f} MB ({m['tokens']:,} tokens)"),
            details=m))
    return rows
