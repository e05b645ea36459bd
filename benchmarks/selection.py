"""Selection quality: the same tiny LM trained on equal token budgets chosen by each method (curate.experiment).

One row per method: the token multiplier (tokens random needs to reach the method's
held-out loss, divided by the method's tokens; random = 1 is the baseline), with the
random seeds' own multipliers as the noise floor; and one row for the wall time
against the 30-minute goal at the default scale. ``--quick`` runs the ``tiny`` scale.

Not in the default ``python -m benchmarks`` set (it trains for ~20 minutes): run it with
``python -m benchmarks --only selection`` or ``python -m benchmarks.selection [--scale tiny]``.
The store (``bench-out/cache/selection-<scale>``) keeps its features between runs; the
experiment's report lands in ``bench-out/selection-<scale>/``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from benchmarks._common import CACHE, OUT, log, row

GOAL_S = 30 * 60  # the default scale, from an empty store, on 2 cores


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
    for r, shown in zip(result["comparison"], table_rows(result)):
        m = r["multiplier"]
        name = f"selection {r['method']}" + (f" s{r['seed']}" if r["method"] == "random" else "")
        what = ("random seed vs the other seeds (noise floor)" if r["method"] == "random"
                else f"tokens random needs for {r['method']}'s held-out loss ÷ {sc['budget']:,}")
        note = (f"{shown['bits/byte']} bits/byte ({shown['Δ bits/byte']} vs random); multiplier "
                f"{shown['token multiplier']}, vs each random seed {shown['vs each random seed']}")
        value = m["value"] if m else None  # a bound (< or > random's curve) is in the note, not a number
        rows.append(row(name, what, docs=result["setup"]["pool_docs"], mb=None, cores=1, ours=value, baseline=1.0,
                        unit="×", note=note, details=r))
    features = sum(f.get("seconds", 0) for f in result["features"].values())
    rows.append(row("selection wall time", f"scale {scale} vs {GOAL_S // 60} min goal", docs=None, mb=None,
                    cores=None, ours=t["total"], baseline=GOAL_S, unit="s",
                    goal=1.0 if scale == "default" else None, goal_op="<=",
                    note=f"store and features {t['prepare']:.0f} s (features made: {features:.0f} s), "
                         f"runs {t['runs']:.0f} s; report {result['files']['report']}",
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
