"""Shared base of the scorers backed by causal LMs (perplexity, EL2N, GraNd).

One place checks the window settings against each model's context, hashes the
weights for the fingerprint, loads the models once per worker (never pickled
to Ray actors) on the scorer's ``device``, says what a Ray worker needs
(:meth:`LMScorer.ray_resources`: a GPU share on CUDA) and turns an Arrow text
column into Python strings.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import ConfigError
from curate.lm.load import (
    check_model_dir,
    cuda_free_bytes,
    gpu_batch_tokens,
    is_cuda,
    load_causal_lm,
    model_context,
    resolve_device,
    resolve_dtype,
    weights_bytes,
    weights_sha256,
)
from curate.scoring import BaseScorer
from curate.store import Store

DEFAULT_WINDOW = 512
SMALL_BATCH_TOKENS = 16384
#: weights (bytes, fp32) from which a model gets one window per forward: SmolLM2-135M on 2 cores
#: ran 228 tokens/s with 512-token batches, 181 with 2,048 and 95 with 16,384 (activations of big
#: batches fall out of cache), while tiny models need big batches to amortise per-call overhead
LARGE_MODEL_BYTES = 80 << 20


#: weights (bytes, as stored) under which a model shares a GPU with other workers by default
SMALL_GPU_MODEL_BYTES = 1 << 30
SMALL_MODEL_GPU_SHARE = 0.25


def auto_batch_tokens(path: Path, window: int) -> int:
    """Padded tokens per forward on CPU: many windows for small models, one for large ones."""
    large = weights_bytes(path) >= LARGE_MODEL_BYTES
    return window if large else max(window, SMALL_BATCH_TOKENS)


def default_gpu_share(model_bytes: int) -> float:
    """The fraction of a GPU one worker asks Ray for: a quarter for a model under 1 GiB of weights (four
    workers share a GPU), a whole GPU otherwise."""
    return SMALL_MODEL_GPU_SHARE if model_bytes < SMALL_GPU_MODEL_BYTES else 1.0


def lm_ray_resources(device: str, gpu_share: float) -> dict[str, float]:
    """Ray actor options of one LM worker: one CPU; on a CUDA device also ``num_gpus=gpu_share``."""
    if not 0 < gpu_share <= 1:
        raise ConfigError(f"gpu_share must be in (0, 1], got {gpu_share!r}")
    if is_cuda(device):
        return {"num_cpus": 1, "num_gpus": gpu_share}
    return {"num_cpus": 1}


class LMScorer(BaseScorer):
    """Holds ``model_paths`` (one or more local causal LMs) and the window settings shared by all of them.

    ``window`` defaults to ``min(512, smallest model context)``; a window beyond the positions a model
    was trained on gives meaningless losses, so it is refused. ``batch_tokens`` only changes speed
    (and float rounding), so it stays out of the fingerprint. ``dtype="auto"`` resolves to bfloat16
    on CPUs with native bf16 for large models, or for any model where ``bf16_any_size`` (see
    :func:`curate.lm.load.resolve_dtype`), and to bfloat16 on a CUDA device.

    ``device``: ``auto`` (CUDA when ``torch.cuda.is_available()``, else CPU), ``cpu``, ``cuda`` or ``cuda:N``;
    resolved here, so a CUDA device the machine lacks is refused before any work. It stays out of the
    fingerprint: what changes scores is the dtype (in the fingerprint); the same dtype on a GPU or a CPU
    differs only by float rounding, like ``batch_tokens`` (the goal for GPU bf16 is within 1e-3 bits/byte of
    CPU fp32: ``benchmarks/gpu_check.py``), so moving a run to GPUs does not make shards already scored in
    the same dtype stale. ``gpu_share``: the fraction of a GPU each Ray worker asks for
    on CUDA (default 0.25 below 1 GiB of weights, else 1). On CUDA without ``batch_tokens`` the batch is
    sized from the GPU's free memory after loading (:func:`curate.lm.load.gpu_batch_tokens`).
    """

    bf16_any_size: ClassVar[bool] = False
    model_kind: ClassVar[str | None] = "lm"
    #: the model :meth:`from_store` resolves when none is named, and whether the scorer takes exactly one
    default_model: ClassVar[str] = "proxy"
    single_model: ClassVar[bool] = False

    @classmethod
    def from_store(cls, store: Store, **settings: Any) -> LMScorer:
        """``model`` (or ``models``: a list or comma-separated) names LMs: a model in the store's ``models/``,
        a ``--seeds`` family (``proxy`` -> ``proxy-s0``, ``proxy-s1``, ...), a local checkpoint directory or
        ``smollm2-135m``; ``model_path(s)`` are taken as they are."""
        from curate.lm.load import resolve_lm_paths

        if not {"model_path", "model_paths"} & set(settings):
            wanted = settings.pop("models", None) or settings.pop("model", cls.default_model)
            wanted = wanted.split(",") if isinstance(wanted, str) else list(wanted)
            paths = [p for w in wanted for p in resolve_lm_paths(store, w)]
            if cls.single_model:
                if len(paths) != 1:
                    raise ConfigError(f"{cls.name} scores with one model; {', '.join(wanted)} name "
                                      f"{len(paths)}: name one member, e.g. {Path(paths[0]).name}")
                settings["model_path"] = paths[0]
            else:
                settings["model_paths"] = paths
        return cls(**settings)

    def __init__(self, model_paths: list[str | Path], *, max_tokens: int, window: int | None,
                 stride: int | None, batch_tokens: int | None, dtype: str, device: str = "auto",
                 gpu_share: float | None = None, **extra: Any) -> None:
        if not model_paths:
            raise ConfigError(f"{self.name}: no model given (set model, models or model_path)")
        paths = [check_model_dir(p) for p in model_paths]
        contexts = [c for c in (model_context(p) for p in paths) if c]
        context = min(contexts) if contexts else None
        window = window or min(DEFAULT_WINDOW, context or DEFAULT_WINDOW)
        if context and window > context:
            raise ConfigError(f"window {window} exceeds the model's context of {context} tokens")
        stride = stride or window // 2
        if window < 2 or not 1 <= stride < window:
            raise ConfigError(f"need window >= 2 and 1 <= stride < window (got {window}, {stride})")
        device = resolve_device(device, f"{self.name}.device")
        gpu_share = default_gpu_share(weights_bytes(paths[0])) if gpu_share is None else float(gpu_share)
        if not 0 < gpu_share <= 1:
            raise ConfigError(f"{self.name}.gpu_share must be in (0, 1] (the fraction of a GPU per worker), "
                              f"got {gpu_share:g}")
        self.auto_batch = batch_tokens is None and is_cuda(device)  # sized from free GPU memory in setup
        if batch_tokens is None:
            batch_tokens = auto_batch_tokens(paths[0], window)
        if max_tokens < 1 or batch_tokens < window:
            raise ConfigError("max_tokens must be positive and batch_tokens at least one window")
        # concrete: the fingerprint says what ran
        dtype = resolve_dtype(dtype, paths[0], any_size=self.bf16_any_size, device=device)
        super().__init__(max_tokens=max_tokens, window=window, stride=stride, dtype=dtype, **extra)
        self.batch_tokens = batch_tokens
        self.device = device  # not a setting: out of config() and the fingerprint (see the class docstring)
        self.gpu_share = gpu_share
        self.model_paths = paths
        self._lms: list[Any] = []

    @property
    def model_path(self) -> Path:
        """The first (for perplexity: the only) model."""
        return self.model_paths[0]

    def config(self) -> dict[str, Any]:
        return {**self.settings, "models": [p.name for p in self.model_paths], **self.scoring()}

    def scoring(self) -> dict[str, str]:
        """How documents are fed to the models where that changed since features were first made
        (:func:`curate.lm.tokenizer.scoring_of`)."""
        from curate.lm.tokenizer import scoring_of

        return scoring_of(self.model_paths)

    def model_hash(self) -> str:
        if len(self.model_paths) == 1:
            return weights_sha256(self.model_path)
        return hashlib.sha256("".join(weights_sha256(p) for p in self.model_paths).encode()).hexdigest()

    def ray_resources(self) -> dict[str, float]:
        return lm_ray_resources(self.device, self.gpu_share)

    def setup(self) -> None:
        if not self._lms:
            self._lms = [load_causal_lm(p, dtype=self.settings["dtype"], device=self.device)
                         for p in self.model_paths]
            if self.auto_batch:
                self.batch_tokens = gpu_batch_tokens(cuda_free_bytes(self.device), weights_bytes(self.model_path),
                                                     self.settings["window"], share=self.gpu_share)

    def __getstate__(self) -> dict[str, Any]:
        # shipped to Ray actors before setup: never pickle a loaded model
        return {**self.__dict__, "_lms": []}

    @staticmethod
    def texts(batch: pa.RecordBatch) -> list[str]:
        text = batch.column("text")
        if text.null_count:
            text = pc.fill_null(text, "")
        return text.to_pylist()

    def score_all(self, lm: Any, texts: list[str], fn: Any = None) -> Any:
        """:func:`curate.lm.score.score_texts` with this scorer's window settings."""
        from curate.lm.score import score_texts

        s = self.settings
        kw = {"fn": fn} if fn is not None else {}
        return score_texts(lm, texts, max_tokens=s["max_tokens"], window=s["window"], stride=s["stride"],
                           batch_tokens=self.batch_tokens, **kw)
