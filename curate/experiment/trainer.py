"""Training for the experiment: warmup-stable-decay with a cooldown branch at every evaluation point.

A model evaluated at a high constant learning rate tracks its last few hundred kB
of data, so a loss curve of live weights is noisy and not a curve of finished
models. Here the main run keeps a constant rate after warmup; at each evaluation
point ``T`` a *branch* copies the weights and optimizer state at ``(1 - cooldown) T``,
decays the rate linearly to zero over the remaining steps on the same data the
main run sees there, is evaluated, and is thrown away (Hägele et al. 2024,
"Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations";
MiniCPM's WSD). Every point of the curve is then a model trained to ``T`` tokens
with a decayed schedule, and the main run's later weights never depend on the
branches (tested).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from curate.errors import ConfigError


class StepData(Protocol):
    """Token batches by step index. ``batch`` is called in step order on the main run (with the live model and
    optimizer, so a staged selection can look at them) and again for the steps of a branch."""

    def batch(self, step: int, model: Any, optimizer: Any, branch: bool) -> np.ndarray: ...


@dataclass(frozen=True)
class Schedule:
    """Warmup (steps), then a constant ``lr``; each branch decays linearly to zero over ``cooldown`` of its length."""

    lr: float
    warmup: int
    cooldown: float

    def __post_init__(self) -> None:
        if not 0 < self.cooldown < 1:
            raise ConfigError(f"cooldown must be a fraction in (0, 1), got {self.cooldown}")

    def main(self, step: int) -> float:
        return self.lr * min(1.0, (step + 1) / max(1, self.warmup))

    def branch_start(self, end: int) -> int:
        """The main-run step a branch ending at ``end`` steps starts from."""
        return max(0, end - max(1, math.ceil(self.cooldown * end)))

    def branch(self, step: int, start: int, end: int) -> float:
        """Linear from the main run's rate at ``start`` to zero at ``end`` (the last step trains at a small rate)."""
        return self.main(start) * (end - step) / (end - start)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kind": "warmup-stable-decay, a linear cooldown branch per evaluation point"}


def train_with_branches(model: Any, optimizer: Any, data: StepData, ends: list[int], schedule: Schedule,
                        evaluate: Callable[[Any], dict[str, Any]], *, on_point: Callable[[int, dict], None] | None = None,
                        ) -> list[dict[str, Any]]:
    """Train ``model`` and return one evaluation per entry of ``ends`` (step counts, increasing).

    The main run trains up to the last branch's start; a branch ending at ``e`` starts from the main run at
    :meth:`Schedule.branch_start` and is evaluated at ``e``. Each result dict gets ``steps``.
    """
    import torch

    ends = sorted({int(e) for e in ends})
    if not ends or ends[0] < 1:
        raise ConfigError(f"evaluation points must be positive step counts, got {ends}")
    starts: dict[int, list[int]] = {}
    for e in ends:
        starts.setdefault(schedule.branch_start(e), []).append(e)
    main_end = max(starts)
    points: list[dict[str, Any]] = []

    def step_once(step: int, lr: float, branch: bool) -> None:
        for group in optimizer.param_groups:
            group["lr"] = lr
        x = torch.from_numpy(data.batch(step, model, optimizer, branch).astype(np.int64))
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for step in range(main_end + 1):
        for end in starts.get(step, []):
            saved = copy.deepcopy((model.state_dict(), optimizer.state_dict()))
            model.train()
            t0 = time.perf_counter()
            for t in range(step, end):
                step_once(t, schedule.branch(t, step, end), branch=True)
            result = {"steps": end, "branch_start": step, **evaluate(model), "seconds": round(time.perf_counter() - t0, 2)}
            points.append(result)
            if on_point:
                on_point(end, result)
            model.load_state_dict(saved[0])
            optimizer.load_state_dict(saved[1])
        if step == main_end:
            break
        model.train()
        step_once(step, schedule.main(step), branch=False)
    return sorted(points, key=lambda p: p["steps"])
