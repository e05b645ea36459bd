"""``perplexity-tiny``: the perplexity scorer vs a naive one-document-per-forward loop, same tiny LM, same docs.

- model: curate's ``tiny`` preset (~0.9M params, byte-level, context 256), trained briefly here
  and cached in ``bench-out/cache`` (its quality does not change the speed).
- ours: ``PerplexityScorer.score`` on Arrow batches of real documents (length-bucketed,
  padded batches, only scored positions through the output head; ``dtype="auto"``: bfloat16 on CPUs
  with native bf16, as the scorer runs by default).
- baseline: for each document, each of the same windows as its own float32 ``model(input_ids)``
  forward (batch of 1) and a cross-entropy over its logits; ``torch.inference_mode`` too.
Both score exactly the same tokens (checked: the summed NLLs agree). Threads = ``CORES``.
Goal: ≥ 5× tokens/s (DESIGN: for tiny models per-call overhead dominates).
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks._common import CACHE, CORES, corpus_table, log, row, text_mb

GOAL = 5.0
MAX_TOKENS = 1024
BATCH_DOCS = 256


def _model_dir() -> str:
    from pathlib import Path

    from curate.ingestion import ingest
    from curate.lm.train import train_lm

    root = CACHE / "ppl-tiny-store"
    model = root / "models" / "tiny-bench"
    if not (model / "card.json").exists():
        import pyarrow.parquet as pq

        from curate.embedded import CORPUS_FIELDS

        root.parent.mkdir(parents=True, exist_ok=True)
        src = CACHE / "ppl-tiny-train.parquet"
        pq.write_table(corpus_table(True, max_mb=2.0), src)
        ingest([Path(src)], root, "bench", fields=CORPUS_FIELDS, progress=False)
        log("perplexity-tiny: training the tiny preset on 50k tokens (cached)")
        train_lm(root, "tiny-bench", config="tiny", tokens=50_000, progress=False)
    return str(model)


def _naive(lm: Any, texts: list[str], window: int, stride: int) -> float:
    import numpy as np
    import torch
    import torch.nn.functional as F

    from curate.lm.windows import windows

    total = 0.0
    with torch.inference_mode():
        for d in lm.encoder.encode(texts, MAX_TOKENS):
            seq = torch.from_numpy(np.concatenate(([lm.encoder.bos_id], d.ids)))
            for start, end, first in windows(len(seq), window, stride):
                logits = lm.model(input_ids=seq[None, start:end]).logits[0]
                tgt = seq[first:end]
                total += F.cross_entropy(logits[first - start - 1: end - start - 1].float(), tgt,
                                         reduction="sum").item()
    return total


def run(quick: bool) -> list[dict[str, Any]]:
    import pyarrow as pa
    import torch

    from curate.lm.load import load_causal_lm
    from scorers.perplexity import PerplexityScorer

    model_dir = _model_dir()
    n_docs = 256 if quick else 1024
    table = corpus_table(True).slice(1000, n_docs)  # past the documents the model was trained on
    texts = table.column("text").to_pylist()
    torch.set_num_threads(CORES)
    scorer = PerplexityScorer(model_dir, max_tokens=MAX_TOKENS)
    scorer.setup()
    s = scorer.settings
    batches = [pa.record_batch({"doc_id": [str(i) for i in range(lo, min(lo + BATCH_DOCS, n_docs))],
                                "text": texts[lo: lo + BATCH_DOCS]}) for lo in range(0, n_docs, BATCH_DOCS)]
    scorer.score(batches[0].slice(0, 8))  # warm-up
    t0 = time.perf_counter()
    outs = [scorer.score(b) for b in batches]
    ours_s = time.perf_counter() - t0
    tokens = sum(pa.compute.sum(o.column("n_tokens")).as_py() for o in outs)
    ours_nll = sum(pa.compute.sum(pa.compute.multiply(o.column("nll").cast(pa.float64()),
                                                      o.column("n_tokens").cast(pa.float64()))).as_py() or 0.0
                   for o in outs)

    lm = load_causal_lm(model_dir)
    _naive(lm, texts[:4], s["window"], s["stride"])  # warm-up
    t0 = time.perf_counter()
    naive_nll = _naive(lm, texts, s["window"], s["stride"])
    naive_s = time.perf_counter() - t0
    ours, base = tokens / ours_s, tokens / naive_s
    log(f"perplexity-tiny: ours {ours:,.0f} tokens/s, naive loop {base:,.0f} tokens/s")
    note = ("" if s["dtype"] == "float32" else
            f"ours in {s['dtype']} (dtype auto on a native-bf16 CPU), the naive loop in float32; summed NLLs differ "
            f"by {abs(ours_nll - naive_nll) / max(naive_nll, 1e-9):.2e}")
    return [row("perplexity-tiny", "PerplexityScorer (auto dtype, length-bucketed batches) vs fp32 one doc per forward",
                docs=n_docs, mb=text_mb(table), cores=CORES, ours=ours, baseline=base, unit="tokens/s",
                goal=GOAL, note=note, details={"tokens": tokens, "dtype": s["dtype"], "ours_s": round(ours_s, 3),
                                               "naive_s": round(naive_s, 3),
                                    "window": s["window"], "stride": s["stride"], "max_tokens": MAX_TOKENS,
                                    "nll_rel_diff": abs(ours_nll - naive_nll) / max(naive_nll, 1e-9),
                                    "model": "tiny preset (~0.9M params, bytes)"})]


if __name__ == "__main__":  # pragma: no cover
    for r in run(quick=True):
        print(r)
