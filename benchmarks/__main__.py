"""Run the benchmark suite: ``python -m benchmarks [--quick] [--only NAME[,NAME]]``.

Prints one table (ours vs baseline, ratio, goal, met?), writes ``bench-out/results.json``
and ``bench-out/ratios.png``. Always exits 0 when the suite ran: a slow machine or a missed
goal is a result, not a failure. ``selection`` (the selection experiment, ~20 minutes; tiny with
``--quick``) runs only when named: ``--only selection``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from typing import Any

from benchmarks._common import OUT, TMP, log, machine_facts, ray_start_seconds, row

#: row name -> module (each exposes ``run(quick: bool) -> list[dict]``)
BENCHMARKS = {
    "ingest": "benchmarks.ingest",
    "fasttext": "benchmarks.fasttext_scoring",
    "heuristics": "benchmarks.heuristics",
    "ray-scaling": "benchmarks.ray_scaling",
    "rss": "benchmarks.rss",
    "dedup": "benchmarks.dedup",
    "dedup-quality": "benchmarks.dedup_quality",
    "mixture-plan": "benchmarks.mixture_plan",
    "export": "benchmarks.export",
    "lineage": "benchmarks.lineage",
    "plan-scale": "benchmarks.plan_scale",
    "sql-join": "benchmarks.sql_join",
    "perplexity-tiny": "benchmarks.perplexity_tiny",
    "perplexity-smollm2": "benchmarks.perplexity_smollm2",
    "cost": "benchmarks.cost",
    "selection": "benchmarks.selection",
}
#: run only when named with --only: the selection experiment trains for ~20 minutes (--quick: the tiny scale)
OPT_IN = {"selection"}


def _fmt(v: Any, unit: str) -> str:
    if v is None:
        return "—"
    if unit == "docs/s":
        return f"{v:,.0f} {unit}"
    if unit == "MB":
        return f"{v:,.0f} {unit}"
    return f"{v:,.2f} {unit}" if v < 100 else f"{v:,.0f} {unit}"


def _sizes(r: dict[str, Any]) -> str:
    parts = []
    if r.get("docs") is not None:
        parts.append(f"{r['docs']:,} docs")
    if r.get("mb") is not None:
        parts.append(f"{r['mb']:,.1f} MB")
    if r.get("cores") is not None:
        parts.append(f"{r['cores']} cores" if r["cores"] != 1 else "1 core")
    return ", ".join(parts)


def _met(r: dict[str, Any]) -> str:
    if r["met"] is None:
        return "n/a" if r["goal"] is None and not r.get("extra_goal") else "?"
    return "yes" if r["met"] else "NO: " + "; ".join(r["missed"])


def print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="curate benchmarks (ratio = ours ÷ baseline)", show_lines=False)
    for col in ("benchmark", "what is compared", "sizes", "ours", "baseline", "ratio", "goal", "met?"):
        table.add_column(col, overflow="fold")
    for r in rows:
        met = _met(r)
        style = "green" if r["met"] else ("red" if r["met"] is False else "")
        baseline = _fmt(r["baseline"], r["unit"]) if r["baseline"] is not None else (
            "unavailable" if r["note"].startswith("baseline unavailable") else "—")
        table.add_row(r["benchmark"], r["compared"], _sizes(r), _fmt(r["ours"], r["unit"]), baseline,
                      "—" if r["ratio"] is None else f"{r['ratio']:.2f}×", r["goal_text"],
                      f"[{style}]{met}[/{style}]" if style else met)
    console = Console(width=max(200, Console().width))
    console.print(table)
    notes = [(r["benchmark"], r["note"]) for r in rows if r.get("note")]
    for name, note in notes:
        console.print(f"  [dim]{name}:[/dim] {note}", highlight=False)


def plot(rows: list[dict[str, Any]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = [r for r in rows if r["goal"] is not None and r["ratio"] is not None]
    if not items:
        return
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(items) + 1.6))
    names = [r["benchmark"] for r in items][::-1]
    ratios = [r["ratio"] for r in items][::-1]
    goals = [r["goal"] for r in items][::-1]
    colors = ["#2e7d32" if r["met"] else "#c62828" for r in items][::-1]
    ys = range(len(items))
    ax.barh(list(ys), ratios, color=colors, height=0.6)
    for y, g, r, item in zip(ys, goals, ratios, items[::-1]):
        ax.plot([g, g], [y - 0.4, y + 0.4], color="black", linewidth=2)
        sign = "≥" if item["goal_op"] == ">=" else "≤"
        ax.text(max(r, g) * 1.08, y, f"{r:.2f}× (goal {sign} {g:g}×)", va="center", fontsize=8)
    ax.set_yticks(list(ys))
    ax.set_yticklabels(names, fontsize=9)
    ax.set_xscale("log")
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    hi = max(max(ratios), max(goals))
    ax.set_xlim(min(min(ratios), min(goals)) / 1.5, hi * 4)
    ax.set_xlabel("ratio, ours ÷ baseline (log scale); black tick = goal; green = met, red = missed")
    ax.set_title("curate benchmarks: ratios vs goals")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small corpus (~10 MB) for a fast run")
    ap.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(BENCHMARKS)} "
                                               f"({', '.join(sorted(OPT_IN))} only when named)")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or [n for n in BENCHMARKS if n not in OPT_IN]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")

    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    OUT.mkdir(exist_ok=True)
    TMP.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    rows: list[dict[str, Any]] = []
    timings = {}
    for name in names:
        log(f"== {name}")
        t0 = time.perf_counter()
        try:
            mod = importlib.import_module(BENCHMARKS[name])
            rows.extend(mod.run(args.quick))
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
            traceback.print_exc()
            r = row(name, "error", docs=None, mb=None, cores=None, ours=None, baseline=None, unit="")
            r["note"] = f"error: {type(exc).__name__}: {exc}"[:300]
            rows.append(r)
        timings[name] = round(time.perf_counter() - t0, 1)
        log(f"== {name} took {timings[name]} s")
    total = time.perf_counter() - t_all

    print_table(rows)
    facts = machine_facts()
    loads = [x for x in (facts.get("loadavg_start") or [])[:1] + (facts.get("loadavg_end") or [])[:1]]
    if loads and max(loads) > 1.5 * (os.cpu_count() or 1):
        print(f"WARNING: 1-min load average {' → '.join(f'{x:.1f}' for x in loads)} on {os.cpu_count()} cores: "
              "other processes competed for the CPUs, so absolute numbers (and ratios) are unreliable; rerun on an idle machine")
    print(f"total runtime {total:.0f} s ({'quick' if args.quick else 'full'}); per benchmark: {timings}")
    results = {
        "machine": facts,
        "mode": "quick" if args.quick else "full",
        "command": "python -m benchmarks" + (" --quick" if args.quick else "") + (
            f" --only {','.join(names)}" if args.only else ""),
        "total_seconds": round(total, 1),
        "benchmark_seconds": timings,
        "ray_start_seconds": [round(s, 3) for s in ray_start_seconds()],
        "rows": rows,
    }
    with open(OUT / "results.json", "w") as f:
        json.dump(results, f, indent=2, default=str)
    try:
        plot(rows, str(OUT / "ratios.png"))
    except Exception as exc:  # noqa: BLE001 - the chart is a convenience
        print(f"could not draw the chart: {exc}", file=sys.stderr)
    print(f"wrote {OUT / 'results.json'} and {OUT / 'ratios.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
