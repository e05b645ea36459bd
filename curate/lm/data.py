"""Training data for reference LMs, streamed from DuckDB: documents in a seeded order, packed to sequences.

Texts arrive as Arrow batches from a DuckDB cursor (never the whole corpus in
Python), are encoded, joined with EOS between documents and cut into fixed
``seq_len`` rows. The order is ``ORDER BY hash(text || seed)``: reproducible,
and mixed across domains (shards are often one domain each, and a tiny LM
trained on them in file order would mostly learn the last domain).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

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


class Packer:
    """Joins documents with EOS and cuts (batch_size, seq_len) int64 batches; a partial batch waits for more text.

    ``feed(texts)`` yields every batch those texts complete; the remainder carries over to the
    next ``feed`` (a new epoch, or the next stage of a staged selection).
    """

    def __init__(self, encoder: Encoder, *, seq_len: int, batch_size: int, max_doc_tokens: int | None = None) -> None:
        self.encoder, self.max_doc_tokens = encoder, max_doc_tokens
        self.need = batch_size * seq_len
        self.shape = (batch_size, seq_len)
        self.eos = np.array([encoder.eos_id], dtype=np.int64)
        self.buf: list[np.ndarray] = []
        self.have = 0
        self.docs = 0  # documents fed so far

    def feed(self, texts: Iterable[str]) -> Iterator[np.ndarray]:
        for chunk in _chunks(iter(texts), 64):  # the HF tokenizer is faster per batch
            self.docs += len(chunk)
            for d in self.encoder.encode(chunk, self.max_doc_tokens):
                self.buf += [d.ids, self.eos]
                self.have += len(d.ids) + 1
            while self.have >= self.need:
                flat = np.concatenate(self.buf)
                yield flat[:self.need].reshape(self.shape)
                self.buf, self.have = [flat[self.need:]], len(flat) - self.need


def token_rows(con: duckdb.DuckDBPyConnection, sql: str, encoder: Encoder, *, seq_len: int, batch_size: int,
               seed: int, max_doc_tokens: int | None = None) -> Iterator[np.ndarray]:
    """Endless (batch_size, seq_len) int64 batches; each pass over the data (epoch) reshuffles with seed + epoch."""
    packer = Packer(encoder, seq_len=seq_len, batch_size=batch_size, max_doc_tokens=max_doc_tokens)
    epoch = 0
    while True:
        before = packer.docs
        yield from packer.feed(ordered_texts(con, sql, seed + epoch))
        if packer.docs == before:
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
