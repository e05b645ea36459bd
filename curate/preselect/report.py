"""The PreSelect report: family ranking, strength distribution, where positives come from, AUC, examples.

Written beside the selector as ``report.md`` and ``strength.png`` (matplotlib, Agg). The
Prefect flow publishes the same Markdown as an artifact; this module never imports Prefect.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from curate.preselect.card import PreSelectCard
from curate.render import markdown_table, png_bytes
from curate.store import Store

REPORT_FILE, PLOT_FILE = "report.md", "strength.png"
EXAMPLES = 10
SNIPPET = 140
NARROW = 0.05  # p90 - p10 of P(positive) below this: probabilities carry order, not calibrated values


def _plot(card: PreSelectCard, probs: np.ndarray, labels: np.ndarray) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dist = card.strength["distribution"]
    top = card.strength["max"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    keys = [int(k) for k in dist]
    a.bar(keys, list(dist.values()), color=["tab:green" if k == top else "tab:gray" for k in keys])
    a.set_xlabel(f"predictive strength (pairs in the measured order, perfect = {top})")
    a.set_ylabel("sampled documents")
    a.set_title(f"{card.sample_docs} documents, {card.strength['perfect']} perfect")
    bins = np.linspace(0, 1, 21)
    for lab, name, color in (("1", "positives", "tab:green"), ("0", "negatives", "tab:red"), ("", "unlabelled", "tab:gray")):
        sel = probs[labels == lab]
        if len(sel):
            b.hist(sel, bins=bins, alpha=0.5, label=f"{name} ({len(sel)})", color=color)
    b.set_xlabel("selector P(positive)")
    b.set_title(f"selector on the sample (validation AUC {card.valid_auc:.3f})")
    b.legend()
    return png_bytes(fig)


def _snippet(text: str) -> str:
    s = " ".join(text.split())
    s = s if len(s) <= SNIPPET else s[:SNIPPET - 1] + "…"
    return s.replace("|", "\\|").replace("`", "'")


def markdown(card: PreSelectCard, sample: dict[str, list[Any]], strength: np.ndarray, probs: np.ndarray) -> str:
    """The report as Markdown (also the Prefect artifact's body)."""
    s = card.strength
    lines = [
        f"# PreSelect selector `{card.name}`",
        "",
        f"- reference family: {len(card.family)} models, ranked by {card.ranked_by} on {card.target}",
        (f"- sample: {card.sample_docs} documents (first {card.max_chars} characters each); perfect strength "
         f"({s['max']}/{s['max']}): {s['perfect']} ({s['perfect_share']:.1%}); mean normalized strength "
         f"{s['mean_normalized']:.3f}"),
        (f"- selector: {card.positives} positives vs {card.negatives} lowest-strength negatives; trained on "
         f"{card.train_docs}, validated on {card.valid_docs}: **AUC {card.valid_auc:.3f}**, accuracy "
         f"{card.valid_accuracy:.3f}"),
        (f"- fastText {', '.join(f'{k}={v}' for k, v in card.fasttext.items())}; newlines to spaces, case kept; "
         f"sha256 `{card.sha256[:16]}`"),
        spread_note(card),
        "",
        "## Family (best first, measured)",
        "",
    ]
    lines += markdown_table(["rank", "model", "source", "params", "target bits/char", "target nats/token", "accuracy", "trained as"],
                    [[m["rank"], m["name"], m["source"], f"{m['params']:,}" if m["params"] else "?",
                      f"{m['target_bpc']:.4f}", f"{m['target_loss']:.4f}",
                      "" if m["accuracy"] is None else f"{m['accuracy']:g}", _spec(m["spec"])] for m in card.family])
    lines += ["", "## Predictive strength", "", f"![strength]({PLOT_FILE})", ""]
    lines += markdown_table(["strength", "documents"], [[k, v] for k, v in s["distribution"].items()])
    lines += ["", "## Where positives come from", ""]
    lines += markdown_table(["domain", "sampled", "positives", "positive share", "negatives"],
                    [[d, r["sampled"], r["positives"], f"{r['positives'] / max(r['sampled'], 1):.1%}", r["negatives"]]
                     for d, r in card.positives_by_domain.items()])
    order = np.argsort(-probs, kind="stable")
    for title, idx in (("highest", order[:EXAMPLES]), ("lowest", order[::-1][:EXAMPLES])):
        lines += ["", f"## The {EXAMPLES} {title}-scored sampled documents", ""]
        lines += markdown_table(["P(positive)", "strength", "domain", "doc_id", "text"],
                        [[f"{probs[i]:.4f}", int(strength[i]), sample["domain"][i], f"`{sample['doc_id'][i][:12]}`",
                          _snippet(sample["text"][i])] for i in idx])
    return "\n".join(lines) + "\n"


def spread_note(card: PreSelectCard) -> str:
    """How far P(positive) moves on the sample, with a warning when it hardly leaves 0.5."""
    q = card.score_quantiles
    line = (f"- P(positive) on the sample: min {q['min']:.4f}, p10 {q['p10']:.4f}, median {q['p50']:.4f}, "
            f"p90 {q['p90']:.4f}, max {q['max']:.4f}")
    if q["p90"] - q["p10"] < NARROW:
        line += (f". **Narrow**: with {card.train_docs} training documents, fastText at "
                 f"{card.fasttext.get('epoch')} epochs (the paper's setting) barely leaves 0.5. The order "
                 "(validation AUC) is what top-share selection uses; absolute cuts such as "
                 "`preselect_score >= 0.7` keep nothing. More sampled documents or more epochs sharpen it.")
    return line


def _spec(spec: dict[str, Any] | None) -> str:
    if not spec:
        return "given checkpoint"
    sh = spec["shape"]
    return (f"h{sh.get('hidden_size')}×{sh.get('num_hidden_layers')}L, {spec['tokens']:,} tokens, seed {spec['seed']}, "
            f"slice {spec.get('slice', 0)}/{spec.get('slices', 1)}")


def write_report(st: Store, card: PreSelectCard, sample: dict[str, list[Any]], strength: np.ndarray,
                 probs: np.ndarray, labels: np.ndarray) -> list[str]:
    """Write report.md and strength.png under ``models/<name>/``; returns their store paths.

    ``labels`` is the selector's label per sampled document ("1", "0", or "" when unlabelled).
    """
    base = st.models_dir(card.name)
    st.write_bytes(f"{base}/{PLOT_FILE}", _plot(card, probs, np.asarray(labels, dtype=object)))
    st.write_bytes(f"{base}/{REPORT_FILE}", markdown(card, sample, strength, probs).encode())
    return [f"{base}/{REPORT_FILE}", f"{base}/{PLOT_FILE}"]
