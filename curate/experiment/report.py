"""The experiment's report: ``results.json``, ``report.md`` (the table) and ``loss_vs_tokens.png``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from curate.experiment.methods import METHODS

RESULTS, REPORT, PLOT = "results.json", "report.md", "loss_vs_tokens.png"


def _label(row: dict[str, Any]) -> str:
    return f"random (seed {row['seed']})" if row["method"] == "random" else row["method"]


def table_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The comparison as rows a person reads (the CLI prints these; the Markdown table is the same)."""
    seconds = {(r["method"], r["seed"]): r["seconds"] for r in result["runs"]}
    out = []
    for row in result["comparison"]:
        m = row["multiplier"]
        rng = row["range"]
        out.append({"method": _label(row), "held-out loss": f"{row['loss']:.4f}",
                    "bits/byte": f"{row['bits_per_byte']:.4f}", "Δ bits/byte": f"{row['delta_bits_per_byte']:+.4f}",
                    "token multiplier": m["text"] if m else "—",
                    "vs each random seed": (rng[0] if rng[0] == rng[1] else f"{rng[0]} … {rng[1]}") if rng else "—",
                    "run s": f"{seconds[(row['method'], row['seed'])]:.0f}"})
    return out


def _md_table(rows: list[dict[str, Any]]) -> list[str]:
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(r[h]) for h in head) + " |" for r in rows]
    return lines


def noise_note(result: dict[str, Any]) -> str:
    """One paragraph on how far apart random seeds land: what a multiplier must beat to mean anything."""
    rnd = [r for r in result["comparison"] if r["method"] == "random"]
    if len(rnd) < 2:
        return "Only one random seed ran: there is no noise floor to compare against (run more seeds)."
    bpb = [r["bits_per_byte"] for r in rnd]
    mults = ", ".join(f"seed {r['seed']} {r['multiplier']['text']}" for r in rnd)
    return (f"Noise floor: the {len(rnd)} random seeds end {min(bpb):.4f}–{max(bpb):.4f} bits/byte at the budget "
            f"(spread {max(bpb) - min(bpb):.4f}); measured against the other seeds they read {mults}. "
            "A method whose multiplier lies within that range is indistinguishable from random here.")


def markdown(result: dict[str, Any]) -> str:
    cfg, sc = result["config"], result["config"]["scale"]
    setup = result["setup"]
    lines = [
        f"# Selection experiment (scale {sc['name']})", "",
        f"Pool: corpus `{cfg['pool']}` ({setup['pool_docs']:,} documents, {setup['pool_tokens']:,} tokens). "
        f"Target: the evaluation half of corpus `heldout` ({setup['eval_docs']:,} documents, "
        f"{setup['eval_tokens']:,} tokens scored per evaluation; the other half is MATES' reference set).", "",
        f"Every method trains the same byte-level Llama ({setup['params']:,} parameters, context {sc['seq_len']}, "
        f"batch {sc['batch_size']}, AdamW lr {sc['lr']:g} constant after {sc['warmup_steps']} warm-up steps, "
        f"seed {cfg['seed']}, {sc['threads']} thread) on **{sc['budget']:,} tokens** drawn by its rule; random "
        f"trains to {result['random_tokens']:,} tokens with {sc['random_seeds']} seeds.", "",
        "Token multiplier = tokens random needs to reach the method's held-out loss ÷ the method's tokens "
        "(above 1: the method saves tokens; `<`/`>`: outside random's measured curve, a bound). "
        "Δ bits/byte is against random's mean at the same tokens (negative is better).", "",
        *_md_table(table_rows(result)), "",
        noise_note(result), "",
        f"![held-out bits per byte vs tokens]({PLOT})", "",
        "## Methods", "",
    ]
    for name in result["config"]["methods"]:
        lines.append(f"- **{name}**: {METHODS[name].label}.")
    lines += ["", "## Draws", ""]
    for r in result["runs"]:
        doms = ", ".join(f"{d} {s:.0%}" for d, s in sorted(r["draw"]["domains"].items(), key=lambda kv: -kv[1]))
        lines.append(f"- {_label(r)}: {r['draw']['docs']:,} documents, {r['draw']['tokens']:,} tokens; {doms}")
        for s in r.get("stages", []):
            extra = (f", Spearman {s['spearman']:.3f} (p {s['pvalue']:.3g}) over {s['probes']} probes, "
                     f"{s['kept']} kept of {s['pool']}") if s["selection"] == "mates" else ""
            lines.append(f"  - stage {s['stage']} ({s['selection']}): {s['docs']} documents, {s['tokens']:,} tokens"
                         f"{extra}, {s['seconds']:.0f} s")
        for p, share in r["draw"].get("phases", {}).items():
            lines.append(f"  - phase {p}: {share:.0%} of tokens")
    t = result["timing"]
    cmd = f" Command: `{result['command']}`" if result.get("command") else ""
    mach = result.get("machine", {})
    load = [x[0] for x in (mach.get("loadavg_start"), mach.get("loadavg")) if x]
    load_note = (f"; 1-minute load average {' → '.join(f'{x:g}' for x in load)} on {mach['cpu_count']} CPUs"
                 if load else "")
    lines += ["", f"Wall time {t['total']:.0f} s (store and features {t['prepare']:.0f} s, runs {t['runs']:.0f} s), "
                  f"{t.get('cpu', 0):.0f} CPU s{load_note}.{cmd}", ""]
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    colors = plt.get_cmap("tab10").colors
    i = 0
    for r in result["runs"]:
        xs = [p["tokens"] for p in r["curve"]]
        ys = [p["bits_per_byte"] for p in r["curve"]]
        if r["method"] == "random":
            ax.plot(xs, ys, color="0.35", lw=1.2, ls="--", marker=".", label=_label(r))
        else:
            ax.plot(xs, ys, color=colors[i % len(colors)], lw=1.6, marker="o", ms=3, label=r["method"])
            i += 1
    ax.axvline(result["config"]["scale"]["budget"], color="0.7", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("training tokens (log scale); grey line = every method's budget")
    ax.set_ylabel("held-out bits per byte (lower is better)")
    ax.set_title(f"selection experiment, scale {result['config']['scale']['name']}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(out: Path, result: dict[str, Any]) -> dict[str, str]:
    """Write the three files into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    (out / RESULTS).write_text(json.dumps(result, indent=2, default=str))
    (out / REPORT).write_text(markdown(result))
    plot(result, out / PLOT)
    return {k: str(out / f) for k, f in (("results", RESULTS), ("report", REPORT), ("plot", PLOT))}
