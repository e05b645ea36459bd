"""Held-out evaluation of one model on every target at once, with bits per byte per target and per domain.

The evaluation documents of all targets are scored in one pass (each capped at
``max_tokens`` bytes, scored in windows of the model's context with half-window
stride, as the perplexity scorer scores documents); sums of NLL and bytes are then
grouped by target and by domain. Bits per byte of a group = its summed NLL / ln 2 /
its bytes, so a group's long documents weigh as much as their bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np


@dataclass
class EvalSet:
    """The evaluation documents and the groups (targets, domains) their scores are summed over."""

    doc_ids: list[str]
    texts: list[str]
    domains: list[str]
    groups: dict[str, np.ndarray]  # "target:<name>" / "domain:<name>" -> row indices

    @property
    def bytes(self) -> int:
        return sum(len(t.encode()) for t in self.texts)


def load_eval_set(con: duckdb.DuckDBPyConnection, targets: dict[str, str], max_bytes: int) -> EvalSet:
    """Every document any target evaluates on (``targets``: name -> SQL returning doc_id), cut to ``max_bytes``."""
    union = " UNION ".join(f"SELECT doc_id FROM ({sql}) AS t{i}" for i, sql in enumerate(targets.values()))
    rows = con.sql(f"""SELECT doc_id, CAST(domain AS VARCHAR), text FROM docs
                       WHERE doc_id IN ({union}) ORDER BY doc_id""").fetchall()
    doc_ids = [r[0] for r in rows]
    texts = [r[2].encode()[:max_bytes].decode(errors="ignore") for r in rows]
    domains = [r[1] or "(none)" for r in rows]
    index = {d: i for i, d in enumerate(doc_ids)}
    groups = {}
    for name, sql in targets.items():
        ids = [r[0] for r in con.sql(f"SELECT DISTINCT doc_id FROM ({sql}) AS t").fetchall()]
        groups[f"target:{name}"] = np.array(sorted(index[i] for i in ids), dtype=np.int64)
    for dom in sorted(set(domains)):
        groups[f"domain:{dom}"] = np.array([i for i, d in enumerate(domains) if d == dom], dtype=np.int64)
    return EvalSet(doc_ids, texts, domains, groups)


def evaluate(model: Any, eval_set: EvalSet, seq_len: int, batch_tokens: int = 16384) -> dict[str, Any]:
    """{"bits_per_byte": {group: value}, "loss": {group: nats per token}} for ``model`` (left in eval mode)."""
    from curate.lm.load import LoadedLM
    from curate.lm.score import score_texts
    from curate.lm.tokenizer import Encoder

    model.eval()
    lm = LoadedLM(model, Encoder(None), Path("."), seq_len)
    res = score_texts(lm, eval_set.texts, max_tokens=10**9, window=seq_len, stride=seq_len // 2,
                      batch_tokens=batch_tokens)
    bpb, loss = {}, {}
    for name, idx in eval_set.groups.items():
        nll, n, nb = float(res.nll_sum[idx].sum()), int(res.n_tokens[idx].sum()), int(res.n_bytes[idx].sum())
        bpb[name] = round(nll / math.log(2) / max(nb, 1), 6)
        loss[name] = round(nll / max(n, 1), 6)
    return {"bits_per_byte": bpb, "loss": loss}
