"""Target/pool overlap: pool documents that are near-copies of target documents, found by word 5-grams.

A target is only a target if the pool does not contain it: a resent mail, a man page
translated with the same boilerplate or a licence header shared by many files puts
held-out text into the training pool. Each document becomes the set of its hashed word
5-grams, normalised as the near-duplicate scorer does (:mod:`curate.dedup.shingles`;
a document under 5 words: one gram of all its words); a pool document is excluded
from every draw when its Jaccard similarity with any target document reaches ``threshold`` (default 0.5), or when it contains
``containment`` (default 0.8) of the 5-grams of a target document of at least
``min_grams`` (default 50: a paragraph, not a shared licence header or signature
line). Candidate pairs come from the shared grams only (DuckDB joins them), so the
check stays linear in text.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from curate.dedup.shingles import shingle_hashes


def _gram_table(texts: list[str], n: int) -> tuple[pa.Table, np.ndarray]:
    """(doc, gram) rows of every document's distinct word ``n``-grams, and each document's distinct count."""
    sh = shingle_hashes(pa.array(texts, pa.large_string()), n)
    doc = np.repeat(np.arange(len(texts), dtype=np.int32), sh.counts())
    table = pa.table({"doc": doc, "gram": sh.hashes}).group_by(["doc", "gram"]).aggregate([])
    sizes = np.bincount(table.column("doc").to_numpy(), minlength=len(texts)).astype(np.int64)
    return table, sizes


@dataclass
class Overlap:
    """Near-copy pairs (pool doc, target doc, jaccard, containment) and the pool documents to exclude."""

    pairs: pa.Table
    excluded: list[str]  # pool doc_ids
    target_hit: list[str]  # target doc_ids with a near-copy in the pool

    def summary(self) -> dict[str, int]:
        return {"pairs": self.pairs.num_rows, "pool_docs_excluded": len(self.excluded),
                "target_docs_with_a_copy": len(self.target_hit)}


def find_overlap(con: duckdb.DuckDBPyConnection, pool_sql: str, target_sql: str, *, n: int = 5,
                 threshold: float = 0.5, containment: float = 0.8, min_grams: int = 50,
                 batch_docs: int = 2000) -> Overlap:
    """Near-copies between the pool (SQL with doc_id, text) and the target (SQL with doc_id, text)."""
    target = con.sql(f"SELECT doc_id, text FROM ({target_sql}) AS t ORDER BY doc_id").fetchall()
    t_ids = [r[0] for r in target]
    t_grams, t_sizes = _gram_table([r[1] for r in target], n)
    known = np.unique(t_grams.column("gram").to_numpy())
    found = []
    reader = con.sql(f"SELECT doc_id, text FROM ({pool_sql}) AS p ORDER BY doc_id").to_arrow_reader(batch_docs)
    work = duckdb.connect()  # the pool stream stays open on ``con``
    work.register("tg", t_grams)
    work.register("tsize", pa.table({"tdoc": np.arange(len(t_ids), dtype=np.int32), "tn": t_sizes}))
    for batch in reader:
        ids, texts = batch.column(0).to_pylist(), batch.column(1).to_pylist()
        grams, sizes = _gram_table(texts, n)
        keep = np.isin(grams.column("gram").to_numpy(), known)  # only grams a target document has
        work.register("pg", grams.filter(pa.array(keep)))
        work.register("psize", pa.table({"pdoc": np.arange(len(ids), dtype=np.int32), "pn": sizes}))
        hits = work.sql(f"""
            WITH shared AS (SELECT pg.doc AS pdoc, tg.doc AS tdoc, count(*) AS k FROM pg JOIN tg USING (gram)
                            GROUP BY ALL)
            SELECT pdoc, tdoc, k / (pn + tn - k) AS jaccard, k / tn AS containment
            FROM shared JOIN psize USING (pdoc) JOIN tsize USING (tdoc)
            WHERE k / (pn + tn - k) >= {float(threshold)}
               OR (tn >= {int(min_grams)} AND k / tn >= {float(containment)})""").fetchall()
        found += [(ids[p], t_ids[t], round(j, 4), round(c, 4)) for p, t, j, c in hits]
    work.close()
    pairs = pa.table({"pool_doc_id": [f[0] for f in found], "target_doc_id": [f[1] for f in found],
                      "jaccard": pa.array([f[2] for f in found], pa.float32()),
                      "containment": pa.array([f[3] for f in found], pa.float32())},
                     schema=pa.schema([("pool_doc_id", pa.string()), ("target_doc_id", pa.string()),
                                       ("jaccard", pa.float32()), ("containment", pa.float32())]))
    return Overlap(pairs, sorted({f[0] for f in found}), sorted({f[1] for f in found}))
