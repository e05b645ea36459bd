"""A mixture's tokenizer: ``bytes`` (UTF-8 bytes, counted from the stored ``n_bytes``) or a local
Hugging Face tokenizer, whose per-document counts the ``tokens`` scorer stores once per tokenizer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.errors import ConfigError
from curate.mixture.spec import MixtureSpec
from curate.store import Store

BYTES = "bytes"


@dataclass(frozen=True)
class MixtureTokenizer:
    """A resolved HF tokenizer: where it is, its content hash, and the ids a loader needs."""

    ref: str
    path: str
    sha256: str
    eos_token_id: int
    vocab_size: int

    def to_dict(self) -> dict[str, Any]:
        # no path: the manifest (and so the mixture's bytes) must not depend on where the files lie
        return {"ref": self.ref, "sha256": self.sha256, "eos_token_id": self.eos_token_id,
                "vocab_size": self.vocab_size}

    def encoder(self) -> Any:
        from curate.mixture.token_counts import load_fast_tokenizer

        return load_fast_tokenizer(self.path)


def resolve_tokenizer(store: Store, spec: MixtureSpec) -> MixtureTokenizer | None:
    """The spec's tokenizer: None for ``bytes``; else a directory with ``tokenizer.json`` found as a path
    (relative to the spec file, then the working directory), a model in the store, or a built-in model."""
    ref = spec.tokenizer
    if ref == BYTES:
        return None
    found = next((p for p in (spec.base_dir / ref, Path(ref).expanduser()) if (p / "tokenizer.json").is_file()), None)
    if found is None:
        from curate.lm.load import resolve_lm_paths

        try:
            found = next((Path(p) for p in resolve_lm_paths(store, ref) if (Path(p) / "tokenizer.json").is_file()),
                         None)
        except ConfigError:
            found = None
    if found is None:
        raise ConfigError(
            f"tokenizer: {ref!r} is not 'bytes', a directory with a tokenizer.json (looked in {spec.base_dir} and "
            "the working directory), a model in the store's models/, or a built-in model (smollm2-135m)"
        )
    from transformers import AutoTokenizer

    from curate.mixture.token_counts import tokenizer_sha256

    tok = AutoTokenizer.from_pretrained(str(found), use_fast=True)
    eos = tok.eos_token_id if tok.eos_token_id is not None else tok.pad_token_id
    if eos is None:
        raise ConfigError(f"tokenizer: {ref!r} has no eos_token (nor pad_token) to end documents with in the stream")
    return MixtureTokenizer(ref=ref, path=str(found.resolve()), sha256=tokenizer_sha256(found),
                            eos_token_id=int(eos), vocab_size=len(tok))


def ensure_token_counts(store: Store, tokenizer: MixtureTokenizer, *, progress: bool | None = None) -> bool:
    """Count every document's tokens into the ``tokens`` table (only missing or stale shards); True if it wrote."""
    from curate.execute import run_scorer
    from curate.mixture.token_counts import TokenCountScorer

    report = run_scorer(store, TokenCountScorer(tokenizer=tokenizer.path), workers=0, progress=progress)
    return report.done > 0
