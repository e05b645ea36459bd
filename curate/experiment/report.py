"""The experiment's report: ``results.json``, ``report.md`` (one table per target) and one plot per target."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from curate.experiment.methods import METHODS
from curate.experiment.scales import Scale
from curate.render import markdown_rows
from curate.store import Store

RESULTS, REPORT = "results.json", "report.md"


def plot_name(target: str) -> str:
    return f"loss_vs_tokens-{target}.png"


def _mix(shares: dict[str, float], top: int = 3) -> str:
    items = list(shares.items())[:top]
    rest = 1 - sum(s for _, s in items)
    return ", ".join(f"{d} {s:.0%}" for d, s in items) + (f", other {rest:.0%}" if rest > 0.005 else "")


def table_rows(cmp: dict[str, Any]) -> list[dict[str, str]]:
    """One target's comparison as rows a person reads (the CLI prints these; the Markdown table is the same)."""
    out = []
    for row in cmp["rows"]:
        m = row["multiplier"]
        extra = ""
        if "vs_random_paired" in row and row["vs_random_paired"]["low"] is not None:
            d = row["vs_random_paired"]
            extra = f"paired vs random {d['mean']:+.4f} ({d['low']:+.4f} … {d['high']:+.4f})"
        if "spearman_by_stage" in row:
            extra = "Spearman " + " / ".join(f"{v:.2f}" for v in row["spearman_by_stage"].values())
        out.append({"method": row["method"], "seeds": str(len(row["seeds"])),
                    "bits/byte (mean ± std)": f"{row['mean']:.4f} ± {row['std']:.4f}",
                    "Δ vs random": f"{row['delta']:+.4f}" if row["method"] != "random" else "—",
                    "token multiplier (90% interval)": m["text"] if row["method"] != "random" else "1× (noise floor)",
                    "trained on": _mix(row["trained_on"]), "note": extra})
    return out


def noise_note(result: dict[str, Any]) -> str:
    """Random's seed spread per target, against the gate: what a difference must beat to mean anything."""
    parts, ok = [], True
    for name, cmp in result["comparison"].items():
        parts.append(f"{name} {cmp['random_std']:.4f}")
        ok &= cmp["noise_ok"]
    gate = next(iter(result["comparison"].values()))["noise_gate"]
    verdict = "within" if ok else "NOT within"
    return (f"Noise: random's seed std at the budget (bits/byte): {', '.join(parts)}; {verdict} the gate of "
            f"{gate} on every target.")


def markdown(result: dict[str, Any]) -> str:
    cfg, sc, setup = result["config"], result["config"]["scale"], result["setup"]
    ov = result["overlap"]
    lines = [
        f"# Selection experiment (scale {sc['name']})", "",
        f"Pool: corpus `{cfg['pool']}` ({setup['pool_docs']:,} documents, {setup['pool_tokens']:,} tokens after "
        f"excluding {ov['pool_docs_excluded']} near-copies of {ov['target_docs_with_a_copy']} target documents: "
        f"word 5-gram Jaccard ≥ {ov['threshold']}).", "",
        f"Every run trains the same byte-level Llama ({result['runs'][0]['params']:,} parameters, context "
        f"{sc['seq_len']}, batch {sc['batch_size']}, AdamW lr {sc['lr']:g}, {sc['warmup_steps']} warm-up steps, one "
        f"thread) on **{sc['budget']:,} tokens**: windows drawn uniformly from what its method keeps, with seeds "
        f"{', '.join(str(s) for s in range(cfg['seed'], cfg['seed'] + sc['seeds']))} (data and initialisation"
        f"{_random_seeds(cfg['seed'], sc)}). "
        f"Each evaluation point is a model whose learning rate decayed to zero over the last "
        f"{sc['cooldown']:.0%} of its steps (a cooldown branch of one warmup-stable-decay run); random's curve "
        f"reaches {result['random_tokens']:,} tokens ({max(sc['random_points']):g}× the budget).", "",
        "Token multiplier = tokens random needs to reach the method's mean held-out bits per byte ÷ the budget, "
        "with a 90% interval from the seeds (Welch t over the method's and random's spreads); above 1 the method "
        "saves tokens; `<`/`>` are bounds outside random's curve.", "",
        noise_note(result), "",
    ]
    for name, cmp in result["comparison"].items():
        tgt = setup["targets"][name]
        lines += [f"## Target `{name}`: {cmp['label']}", "",
                  f"{tgt['eval_docs']:,} evaluation documents ({tgt['eval_bytes']:,} bytes, each cut to "
                  f"{sc['eval_max_bytes']} bytes); {tgt['reference_docs']:,} reference documents the target-aware "
                  "methods see.", "", *markdown_rows(table_rows(cmp)), "", f"![{name}]({plot_name(name)})", ""]
    lines += ["## Methods", ""]
    keep_share = sc.get("keep_share", Scale.keep_share)  # results.json from before the share was a setting
    for name in cfg["methods"]:
        lines.append(f"- **{name}**: {METHODS[name].describe(keep_share)}.")
    if result.get("prepared"):
        lines += ["", "## Target-aware scores", ""]
        for tname, prep in result["prepared"].items():
            if "preselect" in prep:
                p = prep["preselect"]
                rank = ", ".join(f"{r['name'].rsplit('-', 1)[-1]} ({r['where'] or 'all domains'})" for r in p["ranking"])
                lines.append(f"- {tname}: PreSelect family ranked {rank}; {p['perfect']} perfect documents "
                             f"({p['perfect_share']:.1%}); {p.get('positives', '?')} positives "
                             f"({_by_domain(p.get('positives_by_domain', {}))}) vs {p.get('negatives', '?')} "
                             f"negatives; selector AUC {p['valid_auc']:.3f}.")
            if "closest" in prep:
                c = prep["closest"]
                lines.append(f"- {tname}: target LM `{c['model']}` ({c['params']:,} parameters, {c['tokens']:,} "
                             "tokens of the reference half).")
    t = result["timing"]
    cmd = f" Command: `{result['command']}`" if result.get("command") else ""
    lines += ["", f"Wall time {t['total']:.0f} s (store, features and target scores {t['prepare']:.0f} s, "
                  f"runs {t['runs']:.0f} s on {cfg['jobs']} processes; {t['run_seconds']:.0f} run-seconds).{cmd}", ""]
    return "\n".join(lines)


def plot(result: dict[str, Any], target: str, path: Path) -> None:
    """Random's mean curve with its seed band, and every other method's mean ± std at the budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cmp = result["comparison"][target]
    fig, ax = plt.subplots(figsize=(8, 5))
    xs = [p["tokens"] for p in cmp["random_curve"]]
    ys = [p["mean"] for p in cmp["random_curve"]]
    sd = [p["std"] for p in cmp["random_curve"]]
    ax.plot(xs, ys, color="0.3", lw=1.4, marker=".", label="random (mean of seeds)")
    ax.fill_between(xs, [y - s for y, s in zip(ys, sd)], [y + s for y, s in zip(ys, sd)], color="0.6", alpha=0.3,
                    label="random ± 1 std")
    budget = result["config"]["scale"]["budget"]
    colors = plt.get_cmap("tab10").colors
    others = [r for r in cmp["rows"] if r["method"] != "random"]
    for i, row in enumerate(others):
        x = budget * (1 + 0.04 * (i - len(others) / 2))  # spread the points a little so error bars show
        ax.errorbar([x], [row["mean"]], yerr=[row["std"]], fmt="o", ms=5, capsize=3, color=colors[i % 10],
                    label=f"{row['method']} ({row['multiplier']['text']})")
    ax.axvline(budget, color="0.8", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("training tokens (log scale); methods at the budget")
    ax.set_ylabel(f"held-out bits per byte on {target} (lower is better)")
    ax.set_title(f"selection experiment, target {target}, scale {result['config']['scale']['name']}")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def publish(store: Store, out: Path, scale: str) -> str:
    """Copy the report (results.json, report.md, plots) into the store's ``experiments/<scale>/``, where
    ``curate browse`` and ``curate report`` show it; returns that folder."""
    folder = store.experiments_dir(scale)
    for path in sorted([out / RESULTS, out / REPORT, *out.glob("loss_vs_tokens-*.png")]):
        if path.is_file():
            store.write_bytes(f"{folder}/{path.name}", path.read_bytes())
    return folder


def write_report(out: Path, result: dict[str, Any]) -> dict[str, Any]:
    """Write results.json, report.md and a plot per target into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    (out / RESULTS).write_text(json.dumps(result, indent=2, default=str))
    (out / REPORT).write_text(markdown(result))
    plots = {}
    for name in result["comparison"]:
        plot(result, name, out / plot_name(name))
        plots[name] = str(out / plot_name(name))
    return {"results": str(out / RESULTS), "report": str(out / REPORT), "plots": plots}


def _by_domain(rows: dict[str, dict[str, int]]) -> str:
    """'code 145, math 45, ...': where a selector's positives came from, largest first."""
    counts = sorted(((r.get("positives", 0), d) for d, r in rows.items() if r.get("positives")), reverse=True)
    return ", ".join(f"{d} {n}" for n, d in counts) or "none"


def _random_seeds(first: int, sc: dict[str, Any]) -> str:
    """'; random: seeds 0-4' when random runs more seeds than the other methods."""
    n = max(sc["seeds"], sc.get("random_seeds") or 0)
    return f"; random, the noise floor: seeds {first}–{first + n - 1}" if n > sc["seeds"] else ""
