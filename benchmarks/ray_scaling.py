"""``ray-scaling``: the heuristics scorer with 1 Ray worker vs 2 on the same store.

Both runs go through ``run_scorer`` on the same Ray session size; actor start-up is excluded
(actors are started and warmed before the timed passes). Goal: 2 workers ≥ 1.8× the docs/s of 1.
"""

from __future__ import annotations

from typing import Any

from benchmarks._common import CORES, engine_throughput, log, ray_session, row
from benchmarks.heuristics import store_for

GOAL = 1.8


def run(quick: bool) -> list[dict[str, Any]]:
    if CORES < 2:
        return [row("ray-scaling", "heuristics, 2 workers vs 1", docs=None, mb=None, cores=CORES, ours=None,
                    baseline=None, unit="docs/s", note="skipped: this machine has 1 core")]
    from scorers.heuristics import HeuristicsScorer

    store, info = store_for(quick)
    # both in one Ray session, back to back, so a change in machine load hits both alike
    with ray_session():
        log("ray-scaling: heuristics with 1 worker")
        one = engine_throughput(store, HeuristicsScorer, 1, info["mb"], info["docs"])
        log(f"ray-scaling: heuristics with {CORES} workers")
        many = engine_throughput(store, HeuristicsScorer, CORES, info["mb"], info["docs"])
    return [row("ray-scaling", f"HeuristicsScorer: {CORES} Ray workers vs 1", docs=info["docs"],
                mb=info["mb"], cores=CORES, ours=many["docs_s"], baseline=one["docs_s"], unit="docs/s",
                goal=GOAL if CORES == 2 else 0.9 * CORES,
                note=f"{info['shards']} shards; actor start-up excluded ({one['actor_startup_s']:.2f} s / "
                     f"{many['actor_startup_s']:.2f} s); best of 2 passes each",
                details={"one_worker": one, "many_workers": many})]
