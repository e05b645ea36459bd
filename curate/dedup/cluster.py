"""Near-duplicate clusters from the stored ``minhash`` band hashes, written as the ``near_dup`` feature table.

1. Candidates (DuckDB): documents that share a band hash in the same band form a bucket; every
   member is linked to the bucket's first document, so the edges grow linearly with bucket size
   (a bucket of 100 Go files sharing a licence header gives 99 edges, not 4,950).
2. ``verify`` (optional): each candidate edge is kept only when the two documents' real shingle
   sets reach ``min_jaccard`` — LSH false positives and header-only matches drop out.
3. Clusters: connected components over the kept edges (:mod:`curate.dedup.components`).
4. Keep one document per cluster by ``keep_order`` (SQL ``ORDER BY`` over ``doc_features``; default
   the most characters, ties by doc_id); the others are the removable near-duplicates.
5. Write ``features/near_dup/<corpus>--<shard>.parquet`` aligned with each shard (one row per
   document: ``dup_cluster_id``, ``dup_cluster_size``, ``dup_keep``, ``dup_kept_doc_id``), plus
   ``dedup/near_dup.json`` (settings, counts, per-domain and per-corpus removals) and
   ``dedup/near_dup_pairs.parquet`` (the kept edges, with their Jaccard when verified).

A new corpus needs only its own band hashes; clustering is recomputed from everything stored (it is
cheap next to hashing), and skipped when neither the band hashes nor the settings changed.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.dedup.components import components
from curate.dedup.shingles import jaccard, shingle_hashes
from curate.errors import ConfigError
from curate.locks import default_timeout, store_lock
from curate.query import connect, narrow_doc_features
from curate.shards import FINGERPRINT_KEY, SCORER_KEY, feature_path
from curate.store import Store

TABLE = "near_dup"
MINHASH = "minhash"
SUMMARY = "dedup/near_dup.json"
PAIRS = "dedup/near_dup_pairs.parquet"
DEFAULT_ORDER = "length(text) DESC, doc_id"
SCHEMA = pa.schema([("doc_id", pa.string()), ("dup_cluster_id", pa.int64()), ("dup_cluster_size", pa.int32()),
                    ("dup_keep", pa.bool_()), ("dup_kept_doc_id", pa.string())])


@dataclass(frozen=True)
class ClusterSettings:
    """How candidates become clusters and which document of a cluster is kept."""

    verify: bool = False
    min_jaccard: float = 0.6  # with verify: the real shingle Jaccard an edge needs
    keep_order: str = DEFAULT_ORDER  # SQL ORDER BY over doc_features: the first document of a cluster is kept
    ngram: int = 5  # shingles for verify: the minhash scorer's

    def __post_init__(self) -> None:
        if not 0 < self.min_jaccard <= 1:
            raise ConfigError(f"min_jaccard must be in (0, 1], got {self.min_jaccard}")
        if not self.keep_order.strip():
            raise ConfigError("keep_order is empty: give an SQL ORDER BY, e.g. 'length(text) DESC, doc_id'")


@dataclass
class ClusterSummary:
    """What clustering found, by corpus and domain; ``skipped`` when nothing changed since the last run."""

    documents: int
    hashed: int
    candidate_edges: int
    kept_edges: int
    clusters: int
    in_clusters: int
    removed: int
    largest: int
    by_domain: list[dict[str, Any]] = field(default_factory=list)
    by_corpus: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    seconds: float = 0.0
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cluster_near_duplicates(store: Store | str, settings: ClusterSettings | None = None, *,
                            force: bool = False, lock_timeout: float | None = None) -> ClusterSummary:
    """Cluster every document with stored band hashes and write ``near_dup``; see the module docstring."""
    st = Store.of(store)
    settings = settings or ClusterSettings()
    timeout = default_timeout() if lock_timeout is None else lock_timeout
    with store_lock(st, f"score-{TABLE}", f"cluster near-duplicates on {st.uri}", timeout=timeout):
        con = connect(st)
        try:
            return _cluster(st, con, settings, force)
        finally:
            con.close()


def _cluster(st: Store, con: duckdb.DuckDBPyConnection, settings: ClusterSettings, force: bool) -> ClusterSummary:
    t0 = time.perf_counter()
    if MINHASH not in st.feature_tables():
        raise ConfigError(f"{st.uri} has no minhash features: run `curate dedup --store {st.uri}` (it hashes "
                          "first) or `curate score --scorers minhash`")
    check_keep_order(con, settings.keep_order)
    inputs = _input_files(st)
    missing = sorted(set(_shard_outputs(st, MINHASH)) - set(inputs))
    if missing:
        raise ConfigError(f"{len(missing)} shard(s) have no minhash features yet (e.g. {missing[0]}): run "
                          f"`curate dedup --store {st.uri}` to hash them first")
    fp = _fingerprint(inputs, settings)
    previous = st.read_json(SUMMARY) if st.exists(SUMMARY) else None
    if previous and previous.get("fingerprint") == fp and not force and _outputs_match(st, fp):
        return ClusterSummary(**{**previous, "skipped": True, "seconds": time.perf_counter() - t0})

    con.execute("CREATE TEMP TABLE mh AS SELECT row_number() OVER (ORDER BY doc_id) - 1 AS idx, doc_id, bands "
                "FROM minhash WHERE bands IS NOT NULL")
    hashed = con.sql("SELECT count(*) FROM mh").fetchall()[0][0]
    edges = con.sql("""
        WITH b AS (SELECT idx, unnest(bands) AS h, unnest(range(len(bands))) AS band FROM mh),
             bucket AS (SELECT band, h, min(idx) AS root FROM b GROUP BY band, h HAVING count(*) > 1)
        SELECT DISTINCT b.idx AS a, bucket.root AS b FROM b JOIN bucket USING (band, h) WHERE b.idx <> bucket.root
        ORDER BY a, b""").fetchnumpy()
    a, b = edges["a"].astype(np.int64), edges["b"].astype(np.int64)
    candidates = len(a)
    sims = np.full(len(a), np.nan, dtype=np.float32)
    if settings.verify and len(a):
        sims = _edge_jaccard(con, a, b, settings.ngram)
        ok = sims >= settings.min_jaccard
        a, b, sims = a[ok], b[ok], sims[ok]
    label = components(hashed, a, b)
    size = np.bincount(label, minlength=hashed)[label]
    grouped = size > 1
    con.register("clustered", pa.table({"idx": np.flatnonzero(grouped), "label": label[grouped],
                                        "size": size[grouped].astype(np.int32)}))
    # one row per clustered document: its cluster (numbered largest first), size, and the kept document
    con.execute(f"""
        CREATE TEMP TABLE members AS
        WITH m AS (SELECT mh.doc_id, c.label, c.size FROM clustered c JOIN mh USING (idx)),
             ordered AS (SELECT m.doc_id, m.label, m.size,
                                row_number() OVER (PARTITION BY m.label ORDER BY {settings.keep_order}) AS rank
                         FROM m JOIN {narrow_doc_features(con, st, settings.keep_order)} AS f USING (doc_id)),
             kept AS (SELECT label, size, doc_id AS kept_doc_id FROM ordered WHERE rank = 1),
             numbered AS (SELECT label, dense_rank() OVER (ORDER BY size DESC, kept_doc_id) - 1 AS cluster_id
                          FROM kept)
        SELECT o.doc_id, n.cluster_id AS dup_cluster_id, o.size AS dup_cluster_size, o.rank = 1 AS dup_keep,
               k.kept_doc_id AS dup_kept_doc_id
        FROM ordered o JOIN kept k USING (label) JOIN numbered n USING (label)""")
    members = con.sql("SELECT * FROM members ORDER BY doc_id").to_arrow_table()
    _write_table(st, members, fp)
    _write_pairs(st, con, a, b, sims)
    summary = _summary(con, hashed, candidates, len(a), members, settings, fp)
    summary.seconds = round(time.perf_counter() - t0, 2)
    st.write_json(SUMMARY, summary.to_dict())
    return summary


def check_keep_order(con: duckdb.DuckDBPyConnection, keep_order: str) -> None:
    """Refuse (before any work) a keep ordering DuckDB cannot bind over ``doc_features``."""
    try:
        con.sql(f"SELECT doc_id FROM doc_features ORDER BY {keep_order} LIMIT 0").fetchall()
    except duckdb.Error as exc:
        raise ConfigError(f"keep_order {keep_order!r} does not bind over doc_features: "
                          f"{str(exc).splitlines()[0]}") from None


def _file_fingerprint(st: Store, rel: str) -> str:
    """The fingerprint a feature file carries in its Parquet metadata ("" if none)."""
    with st.fs.open_input_file(st.path(rel)) as f:
        return ((pq.read_metadata(f).metadata or {}).get(FINGERPRINT_KEY) or b"").decode()


def _input_files(st: Store) -> dict[str, str]:
    """minhash feature file -> its fingerprint (what the clustering read)."""
    return {rel: _file_fingerprint(st, rel) for rel in st.list_files(st.features_dir(MINHASH))}


def _shard_outputs(st: Store, table: str) -> list[str]:
    """The feature path of ``table`` for every shard of every corpus."""
    out = []
    for corpus in st.corpora():
        for shard in st.list_files(st.shards_dir(corpus)):
            out.append(feature_path(st, table, corpus, shard.rsplit("/", 1)[1]))
    return out


def _fingerprint(inputs: dict[str, str], settings: ClusterSettings) -> str:
    payload = json.dumps({"inputs": sorted(inputs.items()), "settings": asdict(settings), "version": 1},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _outputs_match(st: Store, fp: str) -> bool:
    return all(st.exists(rel) and _file_fingerprint(st, rel) == fp for rel in _shard_outputs(st, TABLE))


def _edge_jaccard(con: duckdb.DuckDBPyConnection, a: np.ndarray, b: np.ndarray, ngram: int) -> np.ndarray:
    """Real shingle Jaccard of every edge; texts of the documents in edges only, read once."""
    nodes = np.unique(np.concatenate([a, b]))
    con.register("nodes", pa.table({"idx": nodes}))
    texts = con.sql("SELECT n.idx, d.text FROM nodes n JOIN mh USING (idx) JOIN docs d USING (doc_id) "
                    "ORDER BY n.idx").to_arrow_table()
    sh = shingle_hashes(texts.column("text"), ngram)
    sets = {int(i): sh.of(k) for k, i in enumerate(texts.column("idx").to_numpy())}  # every node is in an edge
    return np.array([jaccard(sets[int(x)], sets[int(y)]) for x, y in zip(a, b)], dtype=np.float32)


def _write_table(st: Store, members: pa.Table, fp: str) -> None:
    """One ``near_dup`` file per shard, rows in the shard's order (documents in no cluster: size 1, kept)."""
    schema = SCHEMA.with_metadata({FINGERPRINT_KEY: fp.encode(), SCORER_KEY: f"{TABLE}==1".encode()})
    ids = members.column("doc_id")
    for source, out in zip(_shard_outputs(st, MINHASH), _shard_outputs(st, TABLE)):
        with st.fs.open_input_file(st.path(source)) as f:
            doc_id = pq.read_table(f, columns=["doc_id"]).column("doc_id").combine_chunks()
        at = pc.index_in(doc_id, value_set=ids)
        hit = pc.is_valid(at)
        pick = members.take(pc.fill_null(at, 0))
        table = pa.table({
            "doc_id": doc_id,
            "dup_cluster_id": pc.if_else(hit, pick.column("dup_cluster_id"), pa.scalar(None, pa.int64())),
            "dup_cluster_size": pc.if_else(hit, pick.column("dup_cluster_size"), pa.scalar(1, pa.int32())),
            "dup_keep": pc.if_else(hit, pick.column("dup_keep"), pa.scalar(True)),
            "dup_kept_doc_id": pc.if_else(hit, pick.column("dup_kept_doc_id"), doc_id),
        }, schema=schema)
        with st.atomic_output(out) as sink:
            pq.write_table(table, sink, compression="zstd")


def _write_pairs(st: Store, con: duckdb.DuckDBPyConnection, a: np.ndarray, b: np.ndarray, sims: np.ndarray) -> None:
    con.register("edges", pa.table({"a": a, "b": b, "jaccard": sims}))
    pairs = con.sql("SELECT x.doc_id AS doc_id, y.doc_id AS linked_doc_id, e.jaccard FROM edges e "
                    "JOIN mh x ON x.idx = e.a JOIN mh y ON y.idx = e.b ORDER BY 1, 2").to_arrow_table()
    with st.atomic_output(PAIRS) as sink:
        pq.write_table(pairs, sink, compression="zstd")


def _summary(con: duckdb.DuckDBPyConnection, hashed: int, candidates: int, kept: int,
             members: pa.Table, settings: ClusterSettings, fp: str) -> ClusterSummary:
    con.register("m", members)
    by = {}
    for key in ("domain", "corpus"):
        by[key] = [dict(zip(("name", "documents", "in_clusters", "removed", "removed_share"), r)) for r in con.sql(f"""
            SELECT CAST(d.{key} AS VARCHAR) AS name, count(*) AS documents,
                   count(m.doc_id) AS in_clusters, count(*) FILTER (WHERE NOT m.dup_keep) AS removed,
                   round(count(*) FILTER (WHERE NOT m.dup_keep) / count(*), 4) AS removed_share
            FROM docs d LEFT JOIN m USING (doc_id) GROUP BY ALL ORDER BY removed DESC, name""").fetchall()]
    documents = con.sql("SELECT count(*) FROM docs").fetchall()[0][0]
    clusters, in_clusters, removed, largest = con.sql(
        "SELECT count(DISTINCT dup_cluster_id), count(*), count(*) FILTER (WHERE NOT dup_keep), "
        "coalesce(max(dup_cluster_size), 0) FROM m").fetchall()[0]
    return ClusterSummary(documents=documents, hashed=hashed, candidate_edges=candidates, kept_edges=kept,
                          clusters=clusters, in_clusters=in_clusters, removed=removed, largest=int(largest),
                          by_domain=by["domain"], by_corpus=by["corpus"], settings=asdict(settings), fingerprint=fp)
