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
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.errors import ConfigError
from curate.mixture.manifest import MixtureManifest
from curate.mixture.stream import window_partition
from curate.store import Store


def _plan_path(mix: MixtureManifest) -> str:
    return mix.store.path(f"{mix.dir}/{mix.data.get('plan', 'plan.parquet')}")


def _stream_starts(mix: MixtureManifest) -> np.ndarray:
    """Each use's first token in the stream, plus the stream's end (only the token counts are read): for a
    plan built before plan.parquet carried ``stream_start``."""
    with mix.store.fs.open_input_file(_plan_path(mix)) as f:
        sizes = pq.read_table(f, columns=["n_tokens"]).column("n_tokens").combine_chunks().to_numpy()
    starts = np.empty(len(sizes) + 1, dtype=np.int64)
    starts[0] = 0
    np.cumsum(sizes + 1, out=starts[1:])  # EOS after every document
    return starts


def _has_offsets(pf: pq.ParquetFile) -> bool:
    return "stream_start" in pf.schema_arrow.names


def first_step_of_phase(store: Store | str, mixture: str, phase: str, *, batch_size: int, seq_len: int,
                        world_size: int = 1) -> int:
    """The first step all of whose windows lie in ``phase`` (e.g. the end-of-training phase)."""
    mix = MixtureManifest.load(store, mixture)
    with mix.store.fs.open_input_file(_plan_path(mix)) as f:
        if _has_offsets(pq.ParquetFile(f)):  # the phase's row groups only (min/max of phase prune the rest)
            col = pq.read_table(f, columns=["stream_start"], filters=[("phase", "==", phase)]).column(0)
            start = pc.min(col).as_py() if len(col) else None
        else:
            phases = pq.read_table(f, columns=["phase"]).column("phase").to_numpy(zero_copy_only=False)
            hits = np.flatnonzero(phases == phase)
            start = int(_stream_starts(mix)[hits[0]]) if len(hits) else None
    if start is None:
        raise ConfigError(f"mixture {mixture!r} has no phase {phase!r}")
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
    size = seq_len + 1
    windows = step_windows(step, batch_size, world_size=world_size, num_workers=num_workers)
    total = sum(mix.stream_tokens()) // size
    if windows and max(w for _, _, w in windows) >= total:
        raise ConfigError(f"step {step} needs window {max(w for _, _, w in windows):,} but {mixture!r} has "
                          f"{total:,} windows of {size} tokens (with batch {batch_size} x {world_size} rank(s), "
                          f"the last full step is {total // (batch_size * world_size) - 1:,})")
    uses = _uses_over(mix, [(w * size, (w + 1) * size) for _, _, w in windows])
    slots = _slots(windows, size, uses)
    return _describe(mix, slots, uses.filter(pc.is_in(uses.column("position"), slots.column("position"))))


def _uses_over(mix: MixtureManifest, spans: list[tuple[int, int]]) -> pa.Table:
    """The plan rows (in position order, with ``stream_start``) of at least every use overlapping a token span
    [lo, hi).

    plan.parquet's row groups are in stream order, so each one's smallest ``stream_start`` (its footer
    statistics) bounds what it holds: only the groups a span touches are read.
    """
    with mix.store.fs.open_input_file(_plan_path(mix)) as f:
        pf = pq.ParquetFile(f)
        if _has_offsets(pf):
            col = pf.schema_arrow.get_field_index("stream_start")
            stats = [pf.metadata.row_group(g).column(col).statistics for g in range(pf.metadata.num_row_groups)]
            if all(s is not None and s.has_min_max for s in stats):
                firsts = np.array([s.min for s in stats], dtype=np.int64)
                groups: set[int] = set()
                for lo, hi in spans:  # the group holding lo, through the last one starting before hi
                    groups.update(range(max(int(np.searchsorted(firsts, lo, side="right")) - 1, 0),
                                        int(np.searchsorted(firsts, hi, side="left"))))
                return pf.read_row_groups(sorted(groups))
    return _uses_by_counts(mix, spans)


def _uses_by_counts(mix: MixtureManifest, spans: list[tuple[int, int]]) -> pa.Table:
    """:func:`_uses_over` for a plan without ``stream_start`` (built before it): every token count is read
    and summed, then the uses' rows are read by position."""
    starts = _stream_starts(mix)
    positions = sorted({i for lo, hi in spans
                        for i in range(int(np.searchsorted(starts, lo, side="right")) - 1,
                                       int(np.searchsorted(starts, hi, side="left")))})
    con = duckdb.connect()
    try:
        plan = _plan_source(con, mix)
        listed = ", ".join(str(p) for p in positions) or "-1"
        rows = con.sql(f"SELECT * FROM {plan} WHERE position IN ({listed}) ORDER BY position").to_arrow_table()
    finally:
        con.close()
    return rows.append_column("stream_start", pa.array(starts[rows.column("position").to_numpy()], pa.int64()))


def _slots(windows: list[tuple[int, int, int]], size: int, uses: pa.Table) -> pa.Table:
    """One row per (window, use): the use's position and the tokens it fills, within the window and the
    document (its EOS counted)."""
    position = uses.column("position").to_numpy()
    first = uses.column("stream_start").to_numpy()
    end = first + uses.column("n_tokens").to_numpy() + 1  # EOS after every document
    rows: dict[str, list[Any]] = {k: [] for k in ("rank", "worker", "window", "position", "token_from",
                                                  "token_to", "doc_from", "doc_to")}
    for rank, worker, w in windows:
        lo, hi = w * size, (w + 1) * size
        a = int(np.searchsorted(first, lo, side="right")) - 1
        b = int(np.searchsorted(first, hi, side="left"))  # uses [a, b) overlap [lo, hi)
        for i in range(a, b):
            rows["rank"].append(rank)
            rows["worker"].append(worker)
            rows["window"].append(w)
            rows["position"].append(int(position[i]))
            rows["token_from"].append(max(int(first[i]), lo) - lo)  # within the window
            rows["token_to"].append(min(int(end[i]), hi) - lo)
            rows["doc_from"].append(max(int(first[i]), lo) - int(first[i]))  # within the document (+ EOS)
            rows["doc_to"].append(min(int(end[i]), hi) - int(first[i]))
    return pa.table(rows)


def _describe(mix: MixtureManifest, slots: pa.Table, uses: pa.Table) -> pa.Table:
    """Join the step's uses with the plan, the documents, the features the spec reads, and its rule."""
    from curate.query import connect

    spec = mix.data["spec"]
    con = connect(mix.store)
    try:
        con.register("slots", slots)
        con.register("u", uses)
        columns = spec_columns(con, spec)
        con.register("d", _documents(con, mix.store, uses, columns))
        select = "".join(f', d."{c}"' for c in columns)
        phase_rules = {p["name"]: p for p in spec.get("phases") or [{"name": "main"}]}
        con.register("rules", pa.table({
            "phase": list(phase_rules),
            "phase_where": [p.get("where") for p in phase_rules.values()],
            "phase_weights": [str(p.get("weights") or spec["weights"]) for p in phase_rules.values()]}))
        out = con.sql(f"""
            SELECT s."rank", s.worker, s."window", s.token_from, s.token_to, s.doc_from, s.doc_to, u.position,
                   u.phase, u.domain, u.epoch, u.doc_id, d.corpus, d.source, d.url, d.n_bytes{select},
                   r.phase_where, r.phase_weights
            FROM slots s JOIN u ON u.position = s.position
            JOIN d ON d.doc_id = u.doc_id
            LEFT JOIN rules r ON r.phase = u.phase
            ORDER BY s."rank", s."window", u.position""").to_arrow_table()
    finally:
        con.close()
    rule = f"select: {spec.get('select') or '—'}; where: {' AND '.join(spec.get('where') or []) or '—'}"
    return out.append_column("rule", pa.array([rule] * out.num_rows, pa.string()))


def _documents(con: duckdb.DuckDBPyConnection, store: Store, uses: pa.Table, columns: list[str]) -> pa.Table:
    """doc_id, corpus, source, url, n_bytes and the feature ``columns`` of the documents of ``uses`` (registered
    as ``u``), one row each: read at the shard row the build recorded, when it did and the shard still holds
    that document there; else found by id."""
    from curate.query import doc_features_at, narrow_doc_features

    wanted = "doc_id, corpus, source, url, n_bytes" + "".join(f', "{c}"' for c in columns)
    ids = set(uses.column("doc_id").to_pylist())
    if "doc_file" in uses.column_names and uses.column("doc_file").null_count == 0:
        at: dict[str, list[int]] = {}
        for f, r in zip(uses.column("doc_file").to_pylist(), uses.column("doc_row").to_pylist()):
            at.setdefault(f, []).append(r)
        sub = doc_features_at(con, store, at, columns)
        if sub is not None:
            found = con.sql(f"SELECT DISTINCT {wanted} FROM {sub} JOIN (SELECT DISTINCT doc_id, doc_file, doc_row "
                            "FROM u) USING (doc_id, doc_file, doc_row)").to_arrow_table()
            if found.num_rows == len(ids):
                return found
    # by id: literal id lists, so DuckDB filters each scan instead of joining whole tables (10 M rows each)
    listed = ", ".join(f"'{d}'" for d in sorted(ids)) or "NULL"
    features = narrow_doc_features(con, store, " ".join(columns))
    picked = "".join(f', f."{c}"' for c in columns)
    return con.sql(f"""
        SELECT d.doc_id, d.corpus, d.source, d.url, d.n_bytes{picked}
        FROM (SELECT doc_id, corpus, source, url, n_bytes FROM docs WHERE doc_id IN ({listed})) d
        LEFT JOIN (SELECT * FROM {features} WHERE doc_id IN ({listed})) f ON f.doc_id = d.doc_id""").to_arrow_table()


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
        features = features_of(con, st, doc_id)
        used = mixture_uses(con, st, doc_id, seq_len=seq_len, global_batch=global_batch)
    finally:
        con.close()
    near = {k: features[k] for k in ("dup_cluster_id", "dup_cluster_size", "dup_keep", "dup_kept_doc_id")
            if k in features}
    return {"doc_id": doc_id, "uses": used, "near_duplicate": near or None, "features": features}


def mixture_uses(con: duckdb.DuckDBPyConnection, st: Store, doc_id: str, *, seq_len: int | None = None,
                 global_batch: int | None = None) -> list[dict[str, Any]]:
    """Every use of ``doc_id`` in the store's mixtures (see :func:`uses_of`), on a connection with its views."""
    used = []
    for name in sorted(st.list_dirs("mixtures")):
        if not st.exists(f"{st.mixtures_dir(name)}/manifest.json"):
            continue
        for i, phase, epoch, start, end in _uses_in(con, MixtureManifest.load(st, name), doc_id):
            use = {"mixture": name, "position": i, "phase": phase, "epoch": epoch,
                   "tokens_from": start, "tokens_to": end}
            if seq_len and global_batch:
                size = seq_len + 1
                use["steps"] = [start // size // global_batch, (end - 1) // size // global_batch]
            used.append(use)
    return used


def features_of(con: duckdb.DuckDBPyConnection, st: Store, doc_id: str) -> dict[str, Any]:
    """The ``doc_features`` row of ``doc_id``: one scan of the shards' ids finds its row, whose features are
    read there by position when the feature files align; else the whole view is filtered."""
    from curate.query import doc_features_at, docs_with_location

    where = con.sql(f"SELECT doc_file, doc_row FROM {docs_with_location(st)} WHERE doc_id = ?",
                    params=[doc_id]).fetchall()
    if not where:
        raise ConfigError(f"no document {doc_id!r} in {st.uri}")
    file, row = where[0]
    sub = doc_features_at(con, st, {file: [row]}) if file is not None and len(where) == 1 else None
    sql = (f"SELECT * EXCLUDE (doc_file, doc_row) FROM {sub}" if sub is not None
           else "SELECT * FROM doc_features WHERE doc_id = ?")
    doc = con.sql(sql, params=None if sub is not None else [doc_id]).to_arrow_table().to_pylist()
    return doc[0]


def _uses_in(con: duckdb.DuckDBPyConnection, mix: MixtureManifest, doc_id: str) -> list[tuple[int, str, int, int, int]]:
    """(position, phase, epoch, first stream token, end) of every use of ``doc_id`` in ``mix``."""
    plan = _plan_source(con, mix)
    with mix.store.fs.open_input_file(_plan_path(mix)) as f:
        offsets = _has_offsets(pq.ParquetFile(f))
    if offsets:
        return [(i, phase, epoch, start, start + n + 1) for i, phase, epoch, start, n in con.sql(
            f"SELECT position, phase, epoch, stream_start, n_tokens FROM {plan} WHERE doc_id = ? "
            "ORDER BY position", params=[doc_id]).fetchall()]
    starts = _stream_starts(mix)
    return [(i, phase, epoch, int(starts[i]), int(starts[i + 1])) for i, phase, epoch in con.sql(
        f"SELECT position, phase, epoch FROM {plan} WHERE doc_id = ? ORDER BY position",
        params=[doc_id]).fetchall()]


def _plan_source(con: duckdb.DuckDBPyConnection, mix: MixtureManifest) -> str:
    """What to name in ``FROM`` to read ``mix``'s plan on ``con``: DuckDB's own reader on a local store; on an
    object store a pyarrow dataset over the store's filesystem registered on ``con`` (DuckDB would need its
    httpfs extension, downloaded on first use: see curate.arrow_views)."""
    if mix.store.is_local:
        return f"read_parquet('{mix.store.uri_of(mix.dir, mix.data.get('plan', 'plan.parquet'))}')"
    from curate.arrow_views import parquet_dataset

    con.register("_curate_lineage_plan", parquet_dataset(mix.store, [_plan_path(mix)]))
    return "_curate_lineage_plan"
