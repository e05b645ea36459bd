"""The domain model: a fastText classifier trained from labels in the store (the ``domain`` scorer applies it).

Labels come from SQL over the store (default: the ingest-time ``domain`` field),
so source/URL rules or a hand-labelled set work the same way. The model and a
card (per-domain validation precision/recall) land in ``models/<name>/``.
"""

from __future__ import annotations

import datetime as _dt
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from curate.errors import ConfigError
from curate.fasttext import (
    file_sha256,
    fit_supervised,
    load_fasttext,
    predict_batch,
    store_model_file,
)
from curate.store import Store

DEFAULT_LABELS_SQL = "SELECT doc_id, text, domain AS label FROM docs WHERE domain IS NOT NULL"
MODEL_FILE = "model.bin"
CARD_FILE = "card.json"


@dataclass
class DomainCard:
    """What a domain model is, what it was trained on, and how well it does per domain."""

    name: str
    labels: list[str]
    train_docs: int
    valid_docs: int
    accuracy: float
    per_domain: dict[str, dict[str, float]]
    params: dict[str, Any]
    labels_sql: str
    sha256: str
    created: str


def train_domain(
    store: Store | str,
    *,
    name: str = "domain",
    labels_sql: str = DEFAULT_LABELS_SQL,
    per_label: int = 4000,
    max_chars: int = 2000,
    valid_fraction: float = 0.1,
    dim: int = 64,
    epoch: int = 10,
    lr: float = 0.5,
    word_ngrams: int = 2,
    bucket: int = 200_000,
    threads: int | None = None,
    seed: int = 0,
    force: bool = False,
) -> DomainCard:
    """Train a fastText domain classifier from ``labels_sql`` (columns doc_id, text, label).

    A model trained earlier with the same SQL and parameters on the same documents is reused
    unless ``force``: retraining would change the model hash and invalidate every domain score.
    """
    from curate.query import connect

    st = Store.of(store)
    if not 0 < valid_fraction < 0.5:
        raise ConfigError(f"valid_fraction must be in (0, 0.5), got {valid_fraction}")
    con = connect(st)
    try:
        rel = con.sql(f"SELECT * FROM ({labels_sql}) LIMIT 0")
    except Exception as exc:  # duckdb raises many error types
        raise ConfigError(f"labels SQL failed: {exc}") from None
    missing = {"doc_id", "text", "label"} - set(rel.columns)
    if missing:
        raise ConfigError(f"labels SQL must return doc_id, text and label; missing {', '.join(sorted(missing))}")
    # a per-label cap keeps big domains from drowning small ones; hashing makes the sample reproducible
    sample = con.execute(
        f"""
        SELECT label, left(text, {int(max_chars)}) AS text,
               (hash(doc_id || '{int(seed)}') % 1000) < {int(valid_fraction * 1000)} AS valid
        FROM ({labels_sql})
        WHERE label IS NOT NULL AND length(trim(text)) > 0
        QUALIFY row_number() OVER (PARTITION BY label ORDER BY hash(doc_id || '{int(seed)}')) <= {int(per_label)}
        ORDER BY hash(doc_id || '{int(seed)}')
        """
    ).fetchall()
    labels = sorted({r[0] for r in sample})
    if len(labels) < 2:
        raise ConfigError(f"need at least 2 labels to train a domain model, the labels SQL gave {labels}")
    train = [r for r in sample if not r[2]]
    valid = [r for r in sample if r[2]]
    params = {"dim": dim, "epoch": epoch, "lr": lr, "wordNgrams": word_ngrams, "bucket": bucket,
              "max_chars": max_chars, "per_label": per_label, "seed": seed}
    old = st.read_json(f"{st.models_dir(name)}/{CARD_FILE}")
    if (not force and old and old["params"] == params and old["labels_sql"] == labels_sql
            and old["train_docs"] == len(train) and old["valid_docs"] == len(valid)
            and st.exists(f"{st.models_dir(name)}/{MODEL_FILE}")):
        return DomainCard(**old)
    with tempfile.TemporaryDirectory() as tmp:
        model_file = fit_supervised(((label, text) for label, text, _ in train), Path(tmp) / MODEL_FILE,
                                    threads=threads, seed=seed, dim=dim, epoch=epoch, lr=lr, wordNgrams=word_ngrams,
                                    bucket=bucket)
        per_domain, accuracy = _evaluate(load_fasttext(model_file), valid, labels)
        card = DomainCard(
            name=name, labels=labels, train_docs=len(train), valid_docs=len(valid), accuracy=accuracy,
            per_domain=per_domain, params=params, labels_sql=labels_sql, sha256=file_sha256(model_file),
            created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        )
        st.write_bytes(f"{st.models_dir(name)}/{MODEL_FILE}", model_file.read_bytes())
    st.write_json(f"{st.models_dir(name)}/{CARD_FILE}", asdict(card))
    return card


def _evaluate(model: Any, valid: list[tuple], labels: list[str]) -> tuple[dict[str, dict[str, float]], float]:
    pred, _ = predict_batch(model, [r[1] for r in valid], k=1)
    got = [p[0] if p else "" for p in pred]
    truth = [r[0] for r in valid]
    out: dict[str, dict[str, float]] = {}
    for lab in labels:
        tp = sum(1 for t, g in zip(truth, got) if t == lab and g == lab)
        support = sum(1 for t in truth if t == lab)
        predicted = sum(1 for g in got if g == lab)
        out[lab] = {
            "support": support,
            "recall": round(tp / support, 4) if support else 0.0,
            "precision": round(tp / predicted, 4) if predicted else 0.0,
        }
    acc = sum(1 for t, g in zip(truth, got) if t == g) / max(len(truth), 1)
    return out, round(acc, 4)


def model_path(store: Store, name: str = "domain") -> str:
    """Local path of a trained domain model, with a clear error when it was never trained."""
    return store_model_file(store, name, "domain model", "curate train-domain", MODEL_FILE)
