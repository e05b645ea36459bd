"""Lineage: which documents fed a training step, and why each was chosen — and where a document was used.

Everything is read from what a build already wrote: ``plan.parquet`` (every use in training order with
its token count), the manifest (the spec: ``select`` file, ``where`` text, phase weights) and the store's
features. Nothing is copied.

The stream is :class:`curate.mixture.loader.MixtureDataset`'s: each use's tokens then EOS, in plan
order, cut into windows of ``seq_len + 1`` tokens. With ``world_size`` ranks and ``num_workers``
DataLoader workers, rank r's worker k takes windows ``i`` with ``i % (W*K) == r*K + k`` (K = 1 without
workers) in order, and a DataLoader hands out whole batches round-robin over its workers, so batch
``j`` of a rank is worker ``j % K``'s batch number ``j // K``. Step ``s`` is batch ``s`` of every rank
(one batch per rank per step, no gradient accumulation). The exported Megatron / token files keep this
order; Megatron's own ``GPTDataset`` shuffles samples by its seed, which this lookup does not reproduce.
"""

from __future__ import annotations

import re
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import ConfigError
from curate.mixture.manifest import MixtureManifest
from curate.mixture.stream import window_partition
from curate.store import Store


def _plan_path(mix: MixtureManifest) -> str:
    return mix.store.path(f"{mix.dir}/{mix.data.get('plan', 'plan.parquet')}")


def _stream_starts(mix: MixtureManifest) -> np.ndarray:
    """Each use's first token in the stream, plus the stream's end (only the token counts are read)."""
    with mix.store.fs.open_input_file(_plan_path(mix)) as f:
        sizes = pq.read_table(f, columns=["n_tokens"]).column("n_tokens").combine_chunks().to_numpy()
    starts = np.empty(len(sizes) + 1, dtype=np.int64)
    starts[0] = 0
    np.cumsum(sizes + 1, out=starts[1:])  # EOS after every document
    return starts


def first_step_of_phase(store: Store | str, mixture: str, phase: str, *, batch_size: int, seq_len: int,
                        world_size: int = 1) -> int:
    """The first step all of whose windows lie in ``phase`` (e.g. the end-of-training phase)."""
    mix = MixtureManifest.load(store, mixture)
    with mix.store.fs.open_input_file(_plan_path(mix)) as f:
        phases = pq.read_table(f, columns=["phase"]).column("phase").to_numpy(zero_copy_only=False)
    hits = np.flatnonzero(phases == phase)
    if not len(hits):
        raise ConfigError(f"mixture {mixture!r} has no phase {phase!r}")
    start = int(_stream_starts(mix)[hits[0]])
    return -(-start // (seq_len + 1)) // (batch_size * world_size) + 1


def step_windows(step: int, batch_size: int, *, world_size: int = 1, num_workers: int = 0) -> list[tuple[int, int, int]]:
    """(rank, worker, window) of every window in training step ``step`` (``batch_size`` windows per rank)."""
    for name, value, least in (("step", step, 0), ("batch size", batch_size, 1), ("world size", world_size, 1),
                               ("workers", num_workers, 0)):
        if value < least:
            raise ConfigError(f"{name} must be at least {least}, got {value}")
    k = max(num_workers, 1)
    worker, nth_batch = step % k, step // k
    out = []
    for rank in range(world_size):
        slot, stride = window_partition(rank, world_size, worker, k)
        out += [(rank, worker if num_workers else 0, slot + stride * m)
                for m in range(nth_batch * batch_size, (nth_batch + 1) * batch_size)]
    return out


def at_step(store: Store | str, mixture: str, step: int, *, batch_size: int, seq_len: int, world_size: int = 1,
            num_workers: int = 0) -> pa.Table:
    """The documents behind every window of ``step``: one row per (window, use) with the token range it fills
    in the window (``token_from``/``token_to``) and which of the document's tokens those are
    (``doc_from``/``doc_to``, its EOS counted), where the document lives, its phase, epoch, the scores the
    spec's selection reads, and the rule that admitted it."""
    if seq_len < 1:
        raise ConfigError(f"seq_len must be at least 1, got {seq_len}")
    mix = MixtureManifest.load(store, mixture)
    starts = _stream_starts(mix)
    size = seq_len + 1
    windows = step_windows(step, batch_size, world_size=world_size, num_workers=num_workers)
    total = int(starts[-1]) // size
    if windows and max(w for _, _, w in windows) >= total:
        raise ConfigError(f"step {step} needs window {max(w for _, _, w in windows):,} but {mixture!r} has "
                          f"{total:,} windows of {size} tokens (with batch {batch_size} x {world_size} rank(s), "
                          f"the last full step is {total // (batch_size * world_size) - 1:,})")
    rows: dict[str, list[Any]] = {k: [] for k in ("rank", "worker", "window", "position", "token_from",
                                                  "token_to", "doc_from", "doc_to")}
    for rank, worker, w in windows:
        lo, hi = w * size, (w + 1) * size
        first = int(np.searchsorted(starts, lo, side="right")) - 1
        last = int(np.searchsorted(starts, hi, side="left"))  # uses [first, last) overlap [lo, hi)
        for i in range(first, last):
            rows["rank"].append(rank)
            rows["worker"].append(worker)
            rows["window"].append(w)
            rows["position"].append(i)  # plan rows are in position order from 0
            rows["token_from"].append(max(int(starts[i]), lo) - lo)  # within the window
            rows["token_to"].append(min(int(starts[i + 1]), hi) - lo)
            rows["doc_from"].append(max(int(starts[i]), lo) - int(starts[i]))  # within the document (+ EOS)
            rows["doc_to"].append(min(int(starts[i + 1]), hi) - int(starts[i]))
    return _describe(mix, pa.table(rows))


def _describe(mix: MixtureManifest, slots: pa.Table) -> pa.Table:
    """Join the step's uses with the plan, the documents, the features the spec reads, and its rule."""
    from curate.query import connect, narrow_doc_features

    spec = mix.data["spec"]
    con = connect(mix.store)
    try:
        con.register("slots", slots)
        columns = spec_columns(con, spec)
        features = narrow_doc_features(con, mix.store, " ".join(columns))
        select = "".join(f', f."{c}"' for c in columns)
        phase_rules = {p["name"]: p for p in spec.get("phases") or [{"name": "main"}]}
        con.register("rules", pa.table({
            "phase": list(phase_rules),
            "phase_where": [p.get("where") for p in phase_rules.values()],
            "phase_weights": [str(p.get("weights") or spec["weights"]) for p in phase_rules.values()]}))
        positions = ", ".join(str(int(p)) for p in sorted(set(slots.column("position").to_pylist()))) or "-1"
        plan = mix.store.uri_of(mix.dir, mix.data.get("plan", "plan.parquet"))
        # the step's few uses first, then literal id lists: DuckDB filters each scan with them instead of
        # joining the whole docs and feature tables (10 M rows each at scale)
        con.register("u", con.sql(f"SELECT * FROM read_parquet('{plan}') WHERE position IN ({positions})")
                     .to_arrow_table())
        ids = ", ".join(f"'{d}'" for d in sorted({r[0] for r in con.sql("SELECT doc_id FROM u").fetchall()}))
        ids = ids or "NULL"
        out = con.sql(f"""
            SELECT s."rank", s.worker, s."window", s.token_from, s.token_to, s.doc_from, s.doc_to, u.position,
                   u.phase, u.domain, u.epoch, u.doc_id, d.corpus, d.source, d.url, d.n_bytes{select},
                   r.phase_where, r.phase_weights
            FROM slots s JOIN u ON u.position = s.position
            JOIN (SELECT doc_id, corpus, source, url, n_bytes FROM docs WHERE doc_id IN ({ids})) d
              ON d.doc_id = u.doc_id
            LEFT JOIN (SELECT * FROM {features} WHERE doc_id IN ({ids})) f ON f.doc_id = u.doc_id
            LEFT JOIN rules r ON r.phase = u.phase
            ORDER BY s."rank", s."window", u.position""").to_arrow_table()
    finally:
        con.close()
    rule = f"select: {spec.get('select') or '—'}; where: {' AND '.join(spec.get('where') or []) or '—'}"
    return out.append_column("rule", pa.array([rule] * out.num_rows, pa.string()))


def spec_columns(con: duckdb.DuckDBPyConnection, spec: dict[str, Any]) -> list[str]:
    """The doc_features columns a spec's selection reads (named in its select SQL, where text or phase filters)."""
    text = " ".join([spec.get("select_sql") or "", *(spec.get("where") or []),
                     *[(p.get("where") or "") for p in spec.get("phases") or []]])
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
    skip = {"doc_id", "corpus", "domain", "text", "n_bytes", "source", "url", "orig_id", "meta"}
    cols = [r[0] for r in con.sql("DESCRIBE doc_features").fetchall()]
    return [c for c in cols if c in words and c not in skip]


def uses_of(store: Store | str, doc_id: str, *, seq_len: int | None = None,
            global_batch: int | None = None) -> dict[str, Any]:
    """Every mixture, phase and epoch where ``doc_id`` was used (with the first and last step, given
    ``seq_len`` and ``global_batch``: windows ``i // global_batch``, as without DataLoader workers), its
    near-duplicate status when ``near_dup`` exists, and all its feature values."""
    from curate.query import connect

    st = Store.of(store)
    con = connect(st)  # the store's views and credentials (an object store works as a local one)
    try:
        doc = con.sql("SELECT * FROM doc_features WHERE doc_id = ?", params=[doc_id]).to_arrow_table().to_pylist()
        if not doc:
            raise ConfigError(f"no document {doc_id!r} in {st.uri}")
        used = []
        for name in sorted(st.list_dirs("mixtures")):
            if not st.exists(f"{st.mixtures_dir(name)}/manifest.json"):
                continue
            mix = MixtureManifest.load(st, name)
            starts = _stream_starts(mix)
            found = con.sql(f"SELECT position, phase, epoch FROM read_parquet('{st.uri_of(mix.dir, 'plan.parquet')}') "
                            "WHERE doc_id = ? ORDER BY position", params=[doc_id]).fetchall()
            for i, phase, epoch in found:
                use = {"mixture": name, "position": i, "phase": phase, "epoch": epoch,
                       "tokens_from": int(starts[i]), "tokens_to": int(starts[i + 1])}
                if seq_len and global_batch:
                    size = seq_len + 1
                    use["steps"] = [int(starts[i]) // size // global_batch,
                                    (int(starts[i + 1]) - 1) // size // global_batch]
                used.append(use)
    finally:
        con.close()
    features = doc[0]
    near = {k: features[k] for k in ("dup_cluster_id", "dup_cluster_size", "dup_keep", "dup_kept_doc_id")
            if k in features}
    return {"doc_id": doc_id, "uses": used, "near_duplicate": near or None, "features": features}
