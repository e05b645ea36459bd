"""Warmup-stable-decay with cooldown branches: a branch never changes the main run, and decays to zero."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from curate.errors import ConfigError
from curate.experiment.scales import NANO
from curate.experiment.train_run import make_optimizer
from curate.experiment.trainer import Schedule, train_with_branches
from curate.lm.train import build_model


class Fixed:
    def __init__(self, steps: int, seed: int = 0) -> None:
        self.rows = np.random.default_rng(seed).integers(0, 256, size=(steps * 4, 32)).astype(np.uint16)
        self.seen: list[tuple[int, bool]] = []

    def batch(self, step, model, optimizer, branch):
        self.seen.append((step, branch))
        return self.rows[step * 4: (step + 1) * 4]


def _run(ends, weights_at=None):
    torch.manual_seed(0)
    model = build_model(NANO, 32, 0)
    opt = make_optimizer(model, 1e-2)
    data = Fixed(max(ends))
    snaps = {}

    def evaluate(m):
        snaps[len(snaps)] = {k: v.clone() for k, v in m.state_dict().items()}
        return {"sum": float(sum(p.detach().double().sum() for p in m.parameters()))}

    points = train_with_branches(model, opt, data, ends, Schedule(1e-2, 3, 0.2), evaluate)
    return points, data, snaps


def test_a_branch_never_changes_the_main_runs_later_weights():
    torch.set_num_threads(1)
    alone, _, _ = _run([40])
    with_more, data, _ = _run([10, 20, 40])
    assert [p["steps"] for p in with_more] == [10, 20, 40]
    # the model at 40 steps is bit-identical whether or not branches were taken at 10 and 20
    assert with_more[-1]["sum"] == alone[-1]["sum"]
    assert with_more[0]["branch_start"] == 8 and with_more[1]["branch_start"] == 16 and with_more[2]["branch_start"] == 32
    # the main run stops where the last branch starts; branches reuse the main run's batches
    main_steps = [s for s, b in data.seen if not b]
    assert main_steps == list(range(32))
    assert [s for s, b in data.seen if b] == [8, 9, 16, 17, 18, 19, *range(32, 40)]


def test_schedule_warms_up_holds_then_each_branch_decays_to_zero():
    s = Schedule(lr=1.0, warmup=4, cooldown=0.2)
    assert [s.main(i) for i in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert s.branch_start(100) == 80 and s.branch_start(3) == 2
    rates = [s.branch(t, 80, 100) for t in range(80, 100)]
    assert rates[0] == 1.0 and rates[-1] == pytest.approx(0.05) and all(a > b for a, b in zip(rates, rates[1:]))
    with pytest.raises(ConfigError, match="cooldown"):
        Schedule(1.0, 4, 1.5)
