"""Training data for reference LMs, streamed from DuckDB: documents in a seeded order, packed to sequences.

Texts arrive as Arrow batches from a DuckDB cursor (never the whole corpus in
Python), are encoded, joined with EOS between documents and cut into fixed
``seq_len`` rows. The order is ``ORDER BY hash(text || seed)``: reproducible,
and mixed across domains (shards are often one domain each, and a tiny LM
trained on them in file order would mostly learn the last domain).
"""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import numpy as np

from curate.lm.tokenizer import Encoder

FETCH_ROWS = 512


def ordered_texts(con: duckdb.DuckDBPyConnection, sql: str, seed: int) -> Iterator[str]:
    """Texts of ``sql`` (a query with a ``text`` column) in a fixed pseudo-random order.

    Streams from ``con``: run no other query on it until the iterator is done or closed.
    """
    reader = con.sql(
        f"SELECT text FROM ({sql}) AS q WHERE text IS NOT NULL AND length(text) > 0 "
        f"ORDER BY hash(text || '#{int(seed)}'), text"
    ).to_arrow_reader(FETCH_ROWS)
    for batch in reader:
        yield from batch.column(0).to_pylist()


def token_rows(con: duckdb.DuckDBPyConnection, sql: str, encoder: Encoder, *, seq_len: int, batch_size: int,
               seed: int, max_doc_tokens: int | None = None) -> Iterator[np.ndarray]:
    """Endless (batch_size, seq_len) int64 batches; each pass over the data (epoch) reshuffles with seed + epoch."""
    need = batch_size * seq_len
    eos = np.array([encoder.eos_id], dtype=np.int64)
    buf: list[np.ndarray] = []
    have = 0
    epoch = 0
    while True:
        n_texts = 0
        for texts in _chunks(ordered_texts(con, sql, seed + epoch), 64):  # the HF tokenizer is faster per batch
            n_texts += len(texts)
            for d in encoder.encode(texts, max_doc_tokens):
                buf += [d.ids, eos]
                have += len(d.ids) + 1
            while have >= need:
                flat = np.concatenate(buf)
                yield flat[:need].reshape(batch_size, seq_len)
                buf, have = [flat[need:]], len(flat) - need
        if not n_texts:
            raise ValueError("the training SQL returned no text")
        epoch += 1


def _chunks(items: Iterator[str], size: int) -> Iterator[list[str]]:
    out: list[str] = []
    for item in items:
        out.append(item)
        if len(out) == size:
            yield out
            out = []
    if out:
        yield out
