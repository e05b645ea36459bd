"""One run of the experiment, in its own process: draw the method's windows, train with cooldown branches, evaluate.

Every run has the same shape, seed-determined initialisation, AdamW settings and
schedule; only the windows differ. The evaluation covers every target's evaluation
half at once, per target and per domain (:mod:`.evaluation`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from curate.experiment.windows import Draw


class WindowData:
    """``StepData`` over a fixed draw: step ``t`` trains on windows ``t * batch .. (t + 1) * batch``."""

    def __init__(self, draw: Draw, batch_size: int) -> None:
        self.draw, self.bs = draw, batch_size

    def batch(self, step: int, model: Any, optimizer: Any, branch: bool) -> np.ndarray:
        return self.draw.windows[step * self.bs: (step + 1) * self.bs]


def make_optimizer(model: Any, lr: float, weight_decay: float = 0.1) -> Any:
    """AdamW as every curate LM trains: decay on matrices only, betas (0.9, 0.95)."""
    import torch

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95), eps=1e-8)


def _shares(tokens: dict[str, int]) -> dict[str, float]:
    total = sum(tokens.values()) or 1
    return {d: round(n / total, 4) for d, n in sorted(tokens.items(), key=lambda kv: -kv[1])}


def train_one(spec: dict[str, Any], context: dict[str, Any], log: Callable[[str], None] | None) -> dict[str, Any]:
    """Train the run ``spec`` (see :func:`curate.experiment.run.plan_runs`); returns its result record."""
    import torch

    from curate.experiment.evaluation import evaluate, load_eval_set
    from curate.experiment.methods import method_phases, pool_where
    from curate.experiment.prepare import register_score_views
    from curate.experiment.scales import Scale
    from curate.experiment.staged import MatesData
    from curate.experiment.targets import Target
    from curate.experiment.trainer import Schedule, train_with_branches
    from curate.experiment.windows import draw_windows
    from curate.lm.train import build_model
    from curate.query import connect
    from curate.store import Store

    t0 = time.perf_counter()
    sc = context["scale"]
    torch.set_num_threads(int(sc["threads"]))
    scale = Scale(**{**sc, "features": None})
    targets = [Target(**{**t, "domains": tuple(t["domains"]) if t["domains"] else None}) for t in context["targets"]]
    target = next((t for t in targets if spec["target"] and t.name == spec["target"]["name"]), None)
    st = Store.open(context["store"])
    con = connect(st)
    from pathlib import Path

    register_score_views(con, Path(context["out"]), targets)
    eval_set = load_eval_set(con, {t.name: t.eval_sql for t in targets}, scale.eval_max_bytes)
    ends = spec["ends"]
    steps = max(ends)
    schedule = Schedule(scale.lr, scale.warmup_steps, scale.cooldown)
    seed, pool, exclude = spec["seed"], context["pool"], context["exclude_sql"]
    model = build_model(dict(scale.model), scale.seq_len, seed)
    optimizer = make_optimizer(model, scale.lr)
    info: dict[str, Any] = {}
    if spec["method"] == "mates":
        assert target is not None
        data: Any = MatesData(st, con, pool=pool, target=target, steps=steps, stages=scale.mates_stages,
                              batch_size=scale.batch_size, seq_len=scale.seq_len, seed=seed,
                              run=f"exp-{scale.name}-{target.name}-s{seed}", probes=scale.mates_probes,
                              reference_docs=scale.mates_reference_docs, chunk_tokens=scale.mates_chunk_tokens,
                              threads=scale.threads, exclude_sql=exclude, log=log or (lambda m: None))
    else:
        anneal = 1 - schedule.branch_start(steps) / steps  # two-phase: its last phase is exactly the cooldown
        phases = method_phases(spec["method"], pool, target or targets[0], context["pool_shares"], anneal,
                               scale.keep_share)
        draw = draw_windows(con, phases, steps * scale.batch_size, scale.seq_len, seed=seed,
                            pool_where=pool_where(pool), exclude=exclude)
        data = WindowData(draw, scale.batch_size)
        info = {"phases": {p.name: {"fraction": p.fraction, "domains": _shares(draw.domain_tokens[p.name])}
                           for p in phases},
                "supply": draw.supply}
    t_train = time.perf_counter()
    points = train_with_branches(model, optimizer, data, ends, schedule,
                                 lambda m: evaluate(m, eval_set, scale.seq_len))
    for p in points:
        p["tokens"] = p["steps"] * scale.step_tokens
    if spec["method"] == "mates":
        info = {"stages": data.stages, "phases": {k: {"domains": _shares(v)} for k, v in data.domain_tokens.items()}}
    con.close()
    return {**spec, "params": sum(p.numel() for p in model.parameters()), "points": points,
            "eval_docs": len(eval_set.texts), "eval_bytes": eval_set.bytes, "draw": info,
            "seconds": round(time.perf_counter() - t0, 1), "train_seconds": round(time.perf_counter() - t_train, 1),
            "tokens_trained": int(sum(p["steps"] - p["branch_start"] for p in points) * scale.step_tokens
                                  + max(p["branch_start"] for p in points) * scale.step_tokens)}
