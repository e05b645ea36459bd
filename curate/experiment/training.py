"""One run: the experiment's LM trained by :func:`curate.lm.train.train_lm` on a draw, in the draw's order.

Every run has the same shape, context, batch, seed-determined initialisation,
AdamW settings and constant learning rate after a fixed warmup; only the data
differs. Held-out loss is measured at the scale's eval points (``eval_at``) on the
evaluation half of corpus ``heldout``; the other half is MATES' reference set, so
no method selects with the documents it is judged on.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from curate.errors import CurateError
from curate.experiment.scales import Scale
from curate.lm.train import Batches, LMCard
from curate.store import Store

TARGET_SALT = "#experiment-target"
EVAL_SQL = f"SELECT text FROM docs WHERE corpus = 'heldout' AND md5_number(doc_id || '{TARGET_SALT}') % 2 = 0"
REFERENCE_SQL = f"SELECT text FROM docs WHERE corpus = 'heldout' AND md5_number(doc_id || '{TARGET_SALT}') % 2 = 1"
MIX_SALT = 0x6D6978  # the row-mixing generator's stream, apart from any other use of the run's seed
_names = itertools.count()


def texts_in_order(con: duckdb.DuckDBPyConnection, table: pa.Table, batch_rows: int = 256) -> Iterator[str]:
    """The texts of a draw (a table with doc_id), in its row order, streamed from the store."""
    name = f"_exp_draw_{next(_names)}"
    con.register(name, pa.table({"doc_id": table.column("doc_id"), "pos": np.arange(table.num_rows)}))
    try:
        sql = f"SELECT d.text FROM {name} p JOIN docs d USING (doc_id) ORDER BY p.pos"
        reader = con.sql(sql).to_arrow_reader(batch_rows)
        for batch in reader:
            yield from batch.column(0).to_pylist()
    finally:
        con.unregister(name)


class Stream:
    """A run's token batches: texts packed in order, then the rows of every ``scale.mix_batches`` consecutive
    batches shuffled together (seeded), so a step sees pieces of many documents rather than one or two
    (a 20 kB document fills ten batches of 2,048 tokens): without it the held-out curves jump by tenths of
    a bit per byte from one evaluation to the next. Each ``feed`` ends its last window: a MATES stage
    starts clean.
    """

    def __init__(self, scale: Scale, seed: int) -> None:
        from curate.lm.data import Packer
        from curate.lm.tokenizer import Encoder

        self.packer = Packer(Encoder(None), seq_len=scale.seq_len, batch_size=scale.batch_size)
        self.mix = scale.mix_batches
        self.rng = np.random.default_rng([int(seed), MIX_SALT])

    def feed(self, texts: Iterator[str]) -> Iterator[np.ndarray]:
        window: list[np.ndarray] = []
        for batch in self.packer.feed(texts):
            window.append(batch)
            if len(window) == self.mix:
                yield from self._mixed(window)
                window = []
        if window:
            yield from self._mixed(window)

    def _mixed(self, window: list[np.ndarray]) -> list[np.ndarray]:
        rows = np.concatenate(window)
        return np.split(rows[self.rng.permutation(len(rows))], len(window))

    @property
    def docs(self) -> int:
        return self.packer.docs


def draw_batches(con: duckdb.DuckDBPyConnection, table: pa.Table, scale: Scale, seed: int) -> Batches:
    """A ``train_lm`` data source that streams a fixed draw in order (it covers the run's tokens)."""

    def batches(model: Any, optimizer: Any) -> Iterator[np.ndarray]:
        stream = Stream(scale, seed)
        yield from stream.feed(texts_in_order(con, table))
        raise CurateError(f"the draw ran out after {stream.docs} documents: it must cover the run's tokens")

    return batches


def train_run(st: Store, name: str, scale: Scale, *, tokens: int, batches: Batches, seed: int, sql: str,
              progress: bool | None = False) -> LMCard:
    """Train the scale's LM for ``tokens`` on ``batches``; held-out loss at the scale's eval points."""
    from curate.lm.train import train_lm

    return train_lm(st, name, config=dict(scale.model), sql=sql, eval_sql=EVAL_SQL, tokens=tokens,
                    seq_len=scale.seq_len, batch_size=scale.batch_size, lr=scale.lr, schedule="constant",
                    warmup=scale.warmup_steps, seed=seed, eval_tokens=scale.eval_tokens,
                    eval_at=scale.eval_points(tokens), batches=batches, threads=scale.threads, force=True,
                    progress=progress)
