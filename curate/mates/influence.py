"""The data influence model: text -> predicted (z-scored) oracle influence, trained anew every stage.

Two kinds, one saved format (``models/<name>/``: ``head.npz``, ``card.json``,
and ``encoder/`` when the encoder itself was trained):

- ``ridge`` (default; fast on CPU): frozen all-MiniLM-L6-v2 embeddings
  (chunked, mean-pooled), standardized, then ridge regression. The penalty is
  picked by leave-one-out Spearman (closed form), and the reported held-out
  Spearman comes from K-fold predictions (each probe predicted by a model that
  never saw it, penalty chosen inside the fold), so it is an honest number.
- ``finetune`` (the paper's recipe, slower): encoder + linear head trained with
  MSE, 90/10 split, best epoch by Spearman on the held-out 10%.

The target is the z-scored post-step reference loss (lower = better), so a
prediction is in units of oracle standard deviations.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from curate.errors import ConfigError
from curate.mates.encoder import TextEncoder, default_encoder_path, encoder_version
from curate.mates.finetune import fit_finetune
from curate.mates.ridge import fit_ridge
from curate.mates.stats import permutation_pvalue, spearman, zscore
from curate.store import Store

KINDS = ("ridge", "finetune")
HEAD_FILE, CARD_FILE, ENCODER_DIR = "head.npz", "card.json", "encoder"
TARGET = "z-scored post-step reference loss (lower = better)"


@dataclass
class InfluenceCard:
    """What an influence model is, what it learned from, and how well it ranks held-out probes."""

    name: str
    kind: str
    encoder: str
    encoder_sha256: str
    chunk_tokens: int
    max_chunks: int
    target: str
    target_mean: float
    target_std: float
    probes: int
    spearman_heldout: float
    heldout_probes: int
    heldout_how: str
    pvalue: float  # one-sided permutation test of spearman_heldout > 0
    spearman_train: float
    selected: dict[str, Any]
    history: list[dict[str, Any]]
    seed: int
    embed_seconds: float
    fit_seconds: float
    weights_sha256: str = ""
    created: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class InfluenceFit:
    """A trained model, its card, and each probe's held-out prediction (NaN where none was made)."""

    model: InfluenceModel
    card: InfluenceCard
    heldout_pred: np.ndarray


class InfluenceModel:
    """Predicts the z-scored oracle for texts: ``((embed(text) - x_mean) / x_std) @ w + b``."""

    def __init__(self, encoder: TextEncoder, w: np.ndarray, b: float, x_mean: np.ndarray, x_std: np.ndarray) -> None:
        self.encoder, self.w, self.b, self.x_mean, self.x_std = encoder, w, float(b), x_mean, x_std

    def predict_embeddings(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.x_mean) / self.x_std) @ self.w + self.b

    def predict(self, texts: list[str]) -> np.ndarray:
        """Predicted z-scored post-step reference loss per text (float64)."""
        return self.predict_embeddings(self.encoder.embed_numpy(texts).astype(np.float64))

    @classmethod
    def load(cls, path: str | Path, *, batch_tokens: int = 8192) -> InfluenceModel:
        """Load ``models/<name>/`` (a local directory); the base encoder must be the one it was trained on."""
        p = Path(path)
        card = read_card(p)
        enc_dir = p / ENCODER_DIR if (p / ENCODER_DIR / "config.json").is_file() else default_encoder_path()
        sha = encoder_sha256(enc_dir)
        if sha != card["encoder_sha256"]:
            raise ConfigError(f"influence model {p.name!r} was trained on encoder {card['encoder']} "
                              f"(sha256 {card['encoder_sha256'][:12]}), but {enc_dir} differs ({sha[:12]}): "
                              "install that encoder or retrain the stage")
        enc = TextEncoder(enc_dir, chunk_tokens=card["chunk_tokens"], max_chunks=card["max_chunks"],
                          batch_tokens=batch_tokens)
        head = np.load(p / HEAD_FILE)
        return cls(enc, head["w"], float(head["b"]), head["x_mean"], head["x_std"])


def read_card(path: str | Path) -> dict[str, Any]:
    f = Path(path) / CARD_FILE
    if not f.is_file():
        raise ConfigError(f"no MATES influence model at {str(path)!r} (card.json missing): run `curate mates stage`")
    return json.loads(f.read_text())


def encoder_sha256(path: str | Path) -> str:
    """SHA-256 over the encoder's weight files (cached per file state)."""
    from curate.lm.load import weights_sha256

    return weights_sha256(path)


def model_sha256(path: str | Path) -> str:
    """What identifies a saved influence model: its head's arrays plus its encoder's weights.

    The arrays, not the ``.npz`` file: a zip member carries its write time, and retraining a stage
    to the same weights must not make its feature table stale.
    """
    import hashlib

    p = Path(path)
    enc = p / ENCODER_DIR if (p / ENCODER_DIR / "config.json").is_file() else default_encoder_path()
    h = hashlib.sha256()
    with np.load(p / HEAD_FILE) as head:
        for key in sorted(head.files):
            h.update(key.encode() + b"\0" + np.ascontiguousarray(head[key], dtype=np.float64).tobytes())
    h.update(encoder_sha256(enc).encode())
    return h.hexdigest()


def store_model_path(store: Store, name: str) -> str:
    """Local path of ``models/<name>/`` holding an influence model, with a how-to when it is missing."""
    rel = store.models_dir(name)
    if not store.exists(f"{rel}/{HEAD_FILE}"):
        raise ConfigError(f"no MATES influence model {name!r} in the store: run `curate mates stage` first")
    return store.path(rel)


# ------------------------------------------------------------------------------------------ train
def train_influence(store: Store | str, name: str, texts: list[str], oracle: np.ndarray, *, kind: str = "ridge",
                    encoder_path: str | Path | None = None, chunk_tokens: int = 256, max_chunks: int = 2,
                    folds: int = 5, valid_fraction: float = 0.1, epochs: int = 5, lr: float = 5e-5,
                    head_lr: float = 1e-3, batch_size: int = 8, seed: int = 0,
                    progress: bool | None = False) -> InfluenceFit:
    """Train an influence model on (text, oracle) pairs and save it as ``models/<name>/`` with its card.

    ``oracle`` is the post-step reference loss per text (z-scored here). Probes with a NaN oracle
    (empty texts) are dropped. ``kind`` is ``ridge`` or ``finetune`` (see the module docstring).
    """
    if kind not in KINDS:
        raise ConfigError(f"influence kind must be one of {', '.join(KINDS)}, got {kind!r}")
    st = Store.of(store)
    oracle = np.asarray(oracle, dtype=np.float64)
    keep = np.isfinite(oracle)
    texts_k = [t for t, k in zip(texts, keep) if k]
    y, y_mean, y_std = zscore(oracle[keep])
    encoder = TextEncoder(encoder_path, chunk_tokens=chunk_tokens, max_chunks=max_chunks)
    enc_sha = encoder_sha256(encoder.path)
    t0 = time.perf_counter()
    if kind == "ridge":
        x = encoder.embed_numpy(texts_k).astype(np.float64)
        embed_s = time.perf_counter() - t0
        fit = fit_ridge(x, y, folds=folds, seed=seed)
        held = fit["oof"]
        selected = {"alpha": fit["alpha"]}
        history = fit["curve"]
        how = f"{folds}-fold out-of-fold predictions, penalty chosen inside each fold"
        rho_train = spearman(fit["train_pred"], y)
    else:
        embed_s = 0.0
        fit = fit_finetune(encoder, texts_k, y, valid_fraction=valid_fraction, epochs=epochs, lr=lr,
                           head_lr=head_lr, batch_size=batch_size, seed=seed, progress=progress)
        held = fit["heldout"]
        selected = {"best_epoch": fit["best_epoch"], "lr": lr, "head_lr": head_lr, "epochs": epochs}
        history = fit["history"]
        how = f"held-out {valid_fraction:.0%} of the probes (also used to pick the epoch)"
        rho_train = spearman(fit["train_pred"], y[fit["train_idx"]])
    fit_s = time.perf_counter() - t0 - embed_s
    mask = np.isfinite(held)
    rho = spearman(held[mask], y[mask])
    card = InfluenceCard(
        name=name, kind=kind, encoder=encoder_version() if encoder_path is None else str(encoder_path),
        encoder_sha256=enc_sha, chunk_tokens=chunk_tokens, max_chunks=max_chunks, target=TARGET,
        target_mean=y_mean, target_std=y_std, probes=int(keep.sum()), spearman_heldout=rho,
        heldout_probes=int(mask.sum()), heldout_how=how, pvalue=permutation_pvalue(held[mask], y[mask], seed=seed),
        spearman_train=rho_train, selected=selected, history=history, seed=seed, embed_seconds=round(embed_s, 3),
        fit_seconds=round(fit_s, 3), created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    model = InfluenceModel(encoder, fit["w"], fit["b"], fit["x_mean"], fit["x_std"])
    card.weights_sha256 = _save(st, name, model, card, finetuned=kind == "finetune")
    heldout_all = np.full(len(texts), np.nan)
    heldout_all[np.flatnonzero(keep)] = held
    return InfluenceFit(model, card, heldout_all)


def _save(st: Store, name: str, model: InfluenceModel, card: InfluenceCard, *, finetuned: bool) -> str:
    """Write head (+ encoder) then the card (last: a card means a complete model); returns the model hash."""
    rel = st.models_dir(name)
    buf = io.BytesIO()
    np.savez(buf, w=model.w, b=np.float64(model.b), x_mean=model.x_mean, x_std=model.x_std)
    st.write_bytes(f"{rel}/{HEAD_FILE}", buf.getvalue())
    if finetuned:
        with tempfile.TemporaryDirectory() as tmp:
            model.encoder.model.save_pretrained(tmp, safe_serialization=True)
            model.encoder.tokenizer.save_pretrained(tmp)
            for f in sorted(Path(tmp).iterdir()):
                if f.is_file():
                    st.write_bytes(f"{rel}/{ENCODER_DIR}/{f.name}", f.read_bytes())
        if st.is_local:  # the card names the encoder it loads with: the trained one, not the base
            card.extra["base_encoder_sha256"] = card.encoder_sha256
            card.encoder_sha256 = encoder_sha256(st.path(rel, ENCODER_DIR))
    sha = model_sha256(st.path(rel)) if st.is_local else ""
    card.weights_sha256 = sha
    st.write_json(f"{rel}/{CARD_FILE}", asdict(card))
    return sha
