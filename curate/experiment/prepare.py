"""What the experiment makes before any run trains: the overlap exclusion and each target's scores.

- **Overlap**: pool documents that are near-copies of any target document
  (:mod:`.overlap`) are excluded from every draw; the pairs are kept in
  ``<out>/overlap.parquet`` and counted in the report.
- **PreSelect per target**: one family of reference LMs trained on different domain
  mixtures of the pool (shared by every target, ``models/<family>-ref<i>/``), ranked on
  each target's reference half; a fastText selector per target
  (``models/preselect-exp-<target>/``) scores the pool into ``<out>/scores/preselect-<target>.parquet``.
- **Closest to target** (Moore-Lewis): a micro LM trained on the target's reference
  half scores the pool; ``closest_score`` = the general reference LM's bits per byte
  (feature table ``perplexity``) minus the target LM's, so higher is more target-like.

Each file is reused while its inputs are the same (a fingerprint beside it).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.experiment.methods import pool_where, score_view
from curate.experiment.overlap import find_overlap
from curate.experiment.targets import BUILTIN, Target
from curate.store import Store

BATCH = 2048
#: the family recipe's optional curate.preselect.train arguments (how positives and negatives are chosen)
_LABELLING = ("min_positives", "max_perfect_share", "positive_strength", "positive_share", "negatives")


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _cached(path: Path, fp: str) -> bool:
    meta = path.with_suffix(".json")
    return path.is_file() and meta.is_file() and json.loads(meta.read_text()).get("fingerprint") == fp


def _save(path: Path, table: pa.Table, fp: str, info: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)
    path.with_suffix(".json").write_text(json.dumps({"fingerprint": fp, **info}, indent=2))


def corpus_signature(con: duckdb.DuckDBPyConnection) -> list[Any]:
    """Documents per corpus and a hash of their ids: what a cached result depends on in the store."""
    return con.sql("SELECT corpus, count(*), sum(hash(doc_id)) FROM docs GROUP BY 1 ORDER BY 1").fetchall()


def overlap_exclusion(con: duckdb.DuckDBPyConnection, pool: str, targets: list[Target], out: Path, *,
                      threshold: float, log: Callable[[str], None]) -> dict[str, Any]:
    """Find (or reuse) the pool/target near-copies; returns the summary and the exclusion SQL.

    Checked against every built-in target's documents (the whole held-out corpus) whichever targets this
    run asks for, plus the other targets given, so the same pool serves every invocation over that store.
    """
    path = out / "overlap.parquet"
    union = " UNION ".join(f"({t.sql})" for t in [*BUILTIN.values(), *(t for t in targets if t.name not in BUILTIN)])
    target_sql = f"SELECT doc_id, text FROM docs WHERE doc_id IN ({union})"
    fp = fingerprint(corpus_signature(con), union, threshold, "overlap-3")
    if not _cached(path, fp):
        t0 = time.perf_counter()
        found = find_overlap(con, f"SELECT doc_id, text FROM docs WHERE {pool_where(pool)}", target_sql,
                             threshold=threshold)
        domains = dict(con.sql("""SELECT CAST(domain AS VARCHAR), count(*) FROM docs
                                   WHERE doc_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY 1 ORDER BY 1""",
                               params=[found.excluded]).fetchall()) if found.excluded else {}
        info = {**found.summary(), "threshold": threshold, "excluded_by_domain": domains,
                "seconds": round(time.perf_counter() - t0, 1)}
        _save(path, found.pairs, fp, info)
        log(f"overlap: {info['pool_docs_excluded']} pool documents are near-copies of "
            f"{info['target_docs_with_a_copy']} target documents (word 5-gram Jaccard >= {threshold}): excluded")
    info = json.loads(path.with_suffix(".json").read_text())
    return {**info, "exclude_sql": f"SELECT pool_doc_id FROM read_parquet('{path.resolve()}')"}


def register_score_views(con: duckdb.DuckDBPyConnection, out: Path, targets: list[Target]) -> None:
    """DuckDB views ``exp_<kind>_<target>`` (doc_id, domain, text, n_bytes, <kind>_score) for every score file."""
    for t in targets:
        for kind in ("preselect", "closest"):
            f = out / "scores" / f"{kind}-{slug(t.name)}.parquet"
            if f.is_file():
                con.execute(f"""CREATE OR REPLACE TEMP VIEW {score_view(kind, t)} AS
                                SELECT d.doc_id, d.domain, d.text, d.n_bytes, s.score AS {kind}_score
                                FROM docs d JOIN read_parquet('{f.resolve()}') s USING (doc_id)""")


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def _pool_texts(con: duckdb.DuckDBPyConnection, pool: str) -> Any:
    return con.sql(f"SELECT doc_id, text FROM docs WHERE {pool_where(pool)} ORDER BY doc_id").to_arrow_reader(BATCH)


def preselect_scores(st: Store, con: duckdb.DuckDBPyConnection, pool: str, target: Target, recipe: dict[str, Any],
                     out: Path, *, exclude_sql: str, threads: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Train (or reuse) the target's PreSelect selector and score the pool with it."""
    import curate.preselect as preselect
    from curate.preselect.scorer import PreSelectScorer

    name = f"preselect-exp-{slug(target.name)}"
    pool_sql = (f"SELECT doc_id, text, CAST(domain AS VARCHAR) AS domain FROM docs WHERE {pool_where(pool)} "
                f"AND doc_id NOT IN ({exclude_sql})")
    card = preselect.train(st, name=name, members=recipe["members"], family=recipe["family"],
                           family_eval_sql=recipe["family_eval_sql"], pool_sql=pool_sql,
                           target_sql=f"SELECT text FROM ({target.reference_sql}) AS r",
                           sample_docs=recipe["sample_docs"], target_docs=recipe["target_docs"],
                           max_chars=recipe["max_chars"], fasttext=recipe.get("fasttext"), threads=threads,
                           **{k: recipe[k] for k in _LABELLING if k in recipe})
    path = out / "scores" / f"preselect-{slug(target.name)}.parquet"
    fp = fingerprint(corpus_signature(con), card.sha256, card.max_chars, "preselect-scores-1")
    if not _cached(path, fp):
        scorer = PreSelectScorer(st.path(st.models_dir(name), "model.bin"), max_chars=card.max_chars)
        parts = [scorer.score(b) for b in _pool_texts(con, pool)]
        table = pa.Table.from_batches(parts).rename_columns(["doc_id", "score"])
        _save(path, table, fp, {"model": name})
    ranking = [{"name": m["name"], "target_bpc": m["target_bpc"], "where": (m.get("spec") or {}).get("where")}
               for m in card.family]
    log(f"preselect for {target.name}: family ranked {', '.join(r['name'].split('-')[-1] for r in ranking)}; "
        f"{card.strength['perfect']} perfect of {card.sample_docs} ({card.strength['perfect_share']:.1%}), "
        f"{card.positives} positives vs {card.negatives} negatives, "
        f"selector AUC {card.valid_auc:.3f}")
    return {"model": name, "ranking": ranking, "perfect": card.strength["perfect"],
            "perfect_share": card.strength["perfect_share"], "valid_auc": card.valid_auc,
            "positives_by_domain": card.positives_by_domain, "positives": card.positives,
            "negatives": card.negatives, "labelling": card.labelling}


def closest_scores(st: Store, con: duckdb.DuckDBPyConnection, pool: str, target: Target, recipe: dict[str, Any],
                   out: Path, *, max_tokens: int, threads: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Train (or reuse) a micro LM on the target's reference half and score the pool: general minus target bpb."""
    from curate.lm.load import load_causal_lm, resolve_dtype
    from curate.lm.score import score_texts
    from curate.lm.train import train_lm

    name = f"exp-target-{slug(target.name)}"
    card = train_lm(st, name, sql=f"SELECT text FROM ({target.reference_sql}) AS r", threads=threads,
                    progress=False, **recipe)
    path = out / "scores" / f"closest-{slug(target.name)}.parquet"
    fp = fingerprint(corpus_signature(con), card.weights_sha256, max_tokens, "closest-scores-3")
    if not _cached(path, fp):
        model_dir = st.path(st.models_dir(name))
        lm = load_causal_lm(model_dir, dtype=resolve_dtype("auto", model_dir, any_size=True))  # as perplexity scores
        win = lm.context or 128
        ids, scores = [], []
        for b in _pool_texts(con, pool):
            texts = b.column(1).to_pylist()
            res = score_texts(lm, texts, max_tokens=max_tokens, window=win, stride=win // 2, batch_tokens=16384)
            with np.errstate(divide="ignore", invalid="ignore"):
                bpb = res.nll_sum / math.log(2) / res.n_bytes
            ids += b.column(0).to_pylist()
            scores.append(bpb)
        target_bpb = pa.table({"doc_id": ids, "target_bpb": np.concatenate(scores)})
        con.register("_exp_target_bpb", target_bpb)
        table = con.sql("""SELECT t.doc_id, p.bits_per_byte - t.target_bpb AS score FROM _exp_target_bpb t
                           JOIN perplexity p USING (doc_id) ORDER BY t.doc_id""").to_arrow_table()
        con.unregister("_exp_target_bpb")
        _save(path, table, fp, {"model": name})
    log(f"closest for {target.name}: target LM {name} ({card.params:,} parameters, {card.tokens_seen:,} tokens)")
    return {"model": name, "params": card.params, "tokens": card.tokens_seen}
