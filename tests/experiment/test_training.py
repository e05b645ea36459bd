"""The run's token stream: packed in draw order, rows mixed within windows, nothing lost or added."""

from __future__ import annotations

import numpy as np
import pytest

from curate.errors import ConfigError
from curate.experiment.scales import get_scale
from curate.experiment.staged import stage_tokens
from curate.experiment.training import Stream
from curate.lm.data import Packer
from curate.lm.tokenizer import Encoder

SCALE = get_scale("tiny")


def _texts(real_docs):
    return [d["text"] for d in real_docs[:60]]


def test_mixing_only_reorders_rows_within_each_window(real_docs):
    texts = _texts(real_docs)
    plain = list(Packer(Encoder(None), seq_len=SCALE.seq_len, batch_size=SCALE.batch_size).feed(texts))
    mixed = list(Stream(SCALE, seed=0).feed(texts))
    assert len(mixed) == len(plain) and all(b.shape == (SCALE.batch_size, SCALE.seq_len) for b in mixed)
    w = SCALE.mix_batches
    for i in range(0, len(plain), w):
        a = np.concatenate(plain[i:i + w])
        b = np.concatenate(mixed[i:i + w])
        assert sorted(map(bytes, a.astype(np.uint16))) == sorted(map(bytes, b.astype(np.uint16)))
    assert any(not np.array_equal(a, b) for a, b in zip(plain, mixed))  # it did reorder
    again = list(Stream(SCALE, seed=0).feed(texts))
    other = list(Stream(SCALE, seed=1).feed(texts))
    assert all(np.array_equal(a, b) for a, b in zip(mixed, again))
    assert any(not np.array_equal(a, b) for a, b in zip(mixed, other))


def test_stages_split_the_budget_in_whole_windows():
    assert stage_tokens(1000, 4, 100, 10) == [200, 200, 200, 400]
    assert stage_tokens(300, 4, 100, 10) == [70, 70, 70, 90]  # too few windows: whole steps
    assert sum(stage_tokens(16_384, 2, 2048, 512)) == 16_384
    with pytest.raises(ConfigError, match="fewer than one training step per stage"):
        stage_tokens(30, 4, 100, 10)
