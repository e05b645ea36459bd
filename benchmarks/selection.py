"""Selection quality: the same tiny LM trained on equal token budgets chosen by each method (curate.experiment).

One row per (target, method): the token multiplier (tokens random needs to reach the
method's mean held-out bits per byte, divided by the budget; random = 1), with its 90%
interval over the seeds in the note; one row per target for random's seed spread
against the 0.03 bits/byte noise gate; and one row for the wall time against the
90-minute goal at the default scale. ``--quick`` runs the ``tiny`` scale.

Not in the default ``python -m benchmarks`` set (it trains for about an hour): run it with
``python -m benchmarks --only selection`` or ``python -m benchmarks.selection [--scale tiny]``.
The store (``bench-out/cache/selection-<scale>``) keeps its features between runs; the
experiment's report lands in ``bench-out/selection-<scale>/``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from benchmarks._common import CACHE, OUT, log, row

GOAL_S = 90 * 60  # the default scale, every method, 3 seeds, 3 targets, on 2 cores from a demo store


def run(quick: bool, scale: str | None = None, force: bool = True) -> list[dict[str, Any]]:
    from curate.experiment import run_experiment
    from curate.experiment.report import table_rows

    scale = scale or ("tiny" if quick else "default")
    store, out = CACHE / f"selection-{scale}", OUT / f"selection-{scale}"
    log(f"selection experiment, scale {scale}: store {store}, report {out}")
    result = run_experiment(store, out, scale=scale, force=force, log=lambda m: log(f"  {m}"),
                            command=f"python -m benchmarks.selection --scale {scale}")
    sc, t = result["config"]["scale"], result["timing"]
    rows = []
    for target, cmp in result["comparison"].items():
        rows.append(row(f"selection {target}: random seed std", "bits/byte at the budget vs the 0.03 gate",
                        docs=result["setup"]["pool_docs"], mb=None, cores=1, ours=cmp["random_std"], baseline=0.03,
                        unit="bits/byte", goal=1.0 if scale == "default" else None, goal_op="<=",
                        note=f"random {cmp['random_mean']:.4f} bits/byte over {sc['seeds']} seeds",
                        details={"random_curve": cmp["random_curve"]}))
        for r, shown in zip(cmp["rows"], table_rows(cmp)):
            if r["method"] == "random":
                continue
            m = r["multiplier"]["value"]
            rows.append(row(f"selection {target}: {r['method']}", f"tokens random needs ÷ {sc['budget']:,}",
                            docs=result["setup"]["pool_docs"], mb=None, cores=1, ours=m["value"], baseline=1.0,
                            unit="×", note=f"{shown['bits/byte (mean ± std)']} bits/byte; multiplier "
                                          f"{shown['token multiplier (90% interval)']}; {shown['note']}".rstrip("; "),
                            details=r))
    rows.append(row("selection wall time", f"scale {scale} vs {GOAL_S // 60} min goal", docs=None, mb=None,
                    cores=None, ours=t["total"], baseline=GOAL_S, unit="s",
                    goal=1.0 if scale == "default" else None, goal_op="<=",
                    note=f"store, features and target scores {t['prepare']:.0f} s, runs {t['runs']:.0f} s; "
                         f"report {result['files']['report']}",
                    details={"timing": t, "features": result["features"]}))
    return rows


def main(argv: list[str] | None = None) -> int:
    from benchmarks.__main__ import print_table

    ap = argparse.ArgumentParser(prog="python -m benchmarks.selection", description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="default", help="tiny, default or large")
    ap.add_argument("--reuse", action="store_true", help="reuse runs finished earlier with the same data")
    args = ap.parse_args(argv)
    print_table(run(False, scale=args.scale, force=not args.reuse))
    return 0


if __name__ == "__main__":
    sys.exit(main())
