"""Per target: every method's mean held-out bits per byte over its seeds, and its token multiplier with an interval.

For target T, the rows are random (its seeds' spread is the noise gate), the
methods that ignore the target (evaluated on T like on every target), and the
target-aware methods that were given T. A method's multiplier is measured against
random's mean curve on T (:func:`curate.experiment.multiplier.multiplier_interval`);
two-phase is also compared with random seed by seed (the two share every step but
the last phase), which is the test of end-of-training upsampling.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from curate.experiment.multiplier import (
    at_tokens,
    difference_interval,
    multiplier_interval,
)
from curate.experiment.targets import Target

#: the noise gate: random's seed standard deviation at the budget must not exceed this (bits per byte)
NOISE_GATE = 0.03


def _curve(run: dict[str, Any], group: str) -> list[dict[str, float]]:
    return [{"tokens": p["tokens"], "loss": p["bits_per_byte"][group]} for p in run["points"]]


def _std(xs: Sequence[float]) -> float:
    if len(xs) < 2:
        return 0.0
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def _mean_shares(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Domain shares of the tokens a method trained on, averaged over its seeds (and over phases by tokens)."""
    total: dict[str, float] = {}
    for r in runs:
        phases = r["draw"].get("phases", {})
        weight = {name: p.get("fraction", 1 / max(1, len(phases))) for name, p in phases.items()}
        for name, p in phases.items():
            for d, s in p["domains"].items():
                total[d] = total.get(d, 0.0) + s * weight[name] / len(runs)
    norm = sum(total.values()) or 1.0
    return {d: round(v / norm, 4) for d, v in sorted(total.items(), key=lambda kv: -kv[1])}


def compare_target(results: Sequence[dict[str, Any]], target: Target, budget: int) -> dict[str, Any]:
    """The comparison table of one target (see the module docstring); ``budget`` in tokens."""
    group = f"target:{target.name}"
    randoms = sorted((r for r in results if r["method"] == "random"), key=lambda r: r["seed"])
    curves = [_curve(r, group) for r in randoms]
    random_final = {r["seed"]: at_tokens(c, budget) for r, c in zip(randoms, curves)}
    r_mean = sum(random_final.values()) / len(random_final)
    r_std = _std(list(random_final.values()))
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        if r["target"] is None or r["target"]["name"] == target.name:
            groups.setdefault(r["method"], []).append(r)
    rows = []
    for method, runs in groups.items():
        runs = sorted(runs, key=lambda r: r["seed"])
        finals = [at_tokens(_curve(r, group), budget) for r in runs]
        est = multiplier_interval(curves, finals, budget)
        domains = sorted({k for r in runs for k in r["points"][-1]["bits_per_byte"] if k.startswith("domain:")})
        at_budget = [next(p for p in r["points"] if p["tokens"] == budget) for r in runs]
        row: dict[str, Any] = {
            "method": method, "seeds": [r["seed"] for r in runs], "bits_per_byte": finals,
            "mean": round(sum(finals) / len(finals), 6), "std": round(_std(finals), 6),
            "delta": round(sum(finals) / len(finals) - r_mean, 6), "multiplier": est.to_dict(),
            "trained_on": _mean_shares(runs),
            "per_domain": {d.split(":", 1)[1]: round(sum(p["bits_per_byte"][d] for p in at_budget) / len(at_budget), 4)
                           for d in domains},
            "seconds": round(sum(r["seconds"] for r in runs) / len(runs), 1),
        }
        if method == "two-phase":
            paired = [random_final[r["seed"]] for r in runs if r["seed"] in random_final]
            if len(paired) == len(finals):
                row["vs_random_paired"] = difference_interval(finals, paired, paired=True)
        if method == "mates":
            stages = [s for r in runs for s in r["draw"].get("stages", []) if s["selection"] == "mates"]
            by_stage: dict[int, list[float]] = {}
            for s in stages:
                by_stage.setdefault(s["stage"], []).append(s["spearman"])
            row["spearman_by_stage"] = {k: round(sum(v) / len(v), 3) for k, v in sorted(by_stage.items())}
        rows.append(row)
    rows.sort(key=lambda r: (r["method"] != "random", r["mean"]))
    return {"target": target.name, "label": target.label, "random_mean": round(r_mean, 6), "random_std": round(r_std, 6),
            "noise_gate": NOISE_GATE, "noise_ok": len(randoms) >= 2 and r_std <= NOISE_GATE,
            "random_curve": [{"tokens": pts[0]["tokens"], "mean": round(sum(x["loss"] for x in pts) / len(pts), 6),
                              "std": round(_std([x["loss"] for x in pts]), 6)} for pts in zip(*curves)],
            "rows": rows}


def compare_all(results: Sequence[dict[str, Any]], targets: Sequence[Target], budget: int) -> dict[str, Any]:
    """:func:`compare_target` for every target, by name."""
    return {t.name: compare_target(results, t, budget) for t in targets}
