"""The mixture report: a Markdown summary and PNG plots (matplotlib, Agg backend).

- ``domain_share.png``: each domain's share of the tokens across training steps
  (read from ``plan.parquet``), so the phase switch is visible;
- ``tokens.png``: tokens per phase x domain;
- ``report.md``: the phase x domain token table, repetition, shortfalls.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from curate.mixture.build import MixtureManifest

STEPS = 50  # bins along training for the share plot (more bins: noise from single long documents)


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    # no Software/date metadata: the same mixture gives the same bytes
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


def domain_share(manifest: MixtureManifest, steps: int = STEPS) -> tuple[np.ndarray, list[str], np.ndarray, list[float]]:
    """(step edges in tokens, domains, share[step, domain], phase boundaries in tokens) from plan.parquet."""
    st = manifest.store
    with st.fs.open_input_file(st.path(f"{manifest.dir}/plan.parquet")) as f:
        t = pq.read_table(f, columns=["domain", "n_tokens"])
    n = t.column("n_tokens").to_numpy()
    dom = t.column("domain").to_numpy(zero_copy_only=False)
    domains = sorted(set(dom.tolist()))
    end = np.cumsum(n)
    total = int(end[-1]) if len(end) else 0
    edges = np.linspace(0, max(total, 1), steps + 1)
    mid = end - n / 2  # a document counts in the step where its middle falls
    step = np.clip(np.searchsorted(edges, mid, side="right") - 1, 0, steps - 1)
    share = np.zeros((steps, len(domains)))
    for j, d in enumerate(domains):
        m = dom == d
        share[:, j] = np.bincount(step[m], weights=n[m], minlength=steps)
    share /= np.maximum(share.sum(axis=1, keepdims=True), 1)
    bounds, acc = [], 0
    for p in manifest.data["phases"][:-1]:
        acc += p["tokens"]
        bounds.append(float(acc))
    return edges, domains, share, bounds


def table_rows(manifest: MixtureManifest) -> list[dict[str, Any]]:
    rows = []
    for p in manifest.data["phases"]:
        for d, c in sorted(p["domains"].items()):
            rows.append({"phase": p["name"], "domain": d, "weight": c["weight"], "target": c["target"],
                         "tokens": c["tokens"], "docs": c["docs"], "uses": c["occurrences"],
                         "max_epoch": c["max_epoch"], "supply_tokens": c["supply_tokens"],
                         "shortfall": c["shortfall"]})
    return rows


def write_report(manifest: MixtureManifest) -> list[str]:
    """Write report.md, domain_share.png and tokens.png beside the mixture; returns their store paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    st, base = manifest.store, manifest.dir
    edges, domains, share, bounds = domain_share(manifest)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    x = (edges[:-1] + edges[1:]) / 2 / 1e6
    ax.stackplot(x, share.T, labels=domains)
    for b in bounds:
        ax.axvline(b / 1e6, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("training tokens (M)")
    ax.set_ylabel("domain share of tokens")
    ax.set_ylim(0, 1)
    ax.set_xlim(x[0], x[-1])
    ax.set_title(f"{manifest.name}: domain share across training (dashed: phase switch)")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    st.write_bytes(f"{base}/domain_share.png", _png(fig))
    plt.close(fig)

    rows = table_rows(manifest)
    phases = [p["name"] for p in manifest.data["phases"]]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / max(len(phases), 1)
    for i, ph in enumerate(phases):
        vals = [next((r["tokens"] for r in rows if r["phase"] == ph and r["domain"] == d), 0) / 1e6 for d in domains]
        ax.bar(np.arange(len(domains)) + i * width, vals, width, label=ph)
    ax.set_xticks(np.arange(len(domains)) + width * (len(phases) - 1) / 2, domains, rotation=30)
    ax.set_ylabel("tokens (M)")
    ax.set_title("tokens per phase x domain")
    ax.legend()
    fig.tight_layout()
    st.write_bytes(f"{base}/tokens.png", _png(fig))
    plt.close(fig)

    st.write_bytes(f"{base}/report.md", markdown(manifest, rows).encode())
    return [f"{base}/{n}" for n in ("report.md", "domain_share.png", "tokens.png")]


def markdown(manifest: MixtureManifest, rows: list[dict[str, Any]] | None = None) -> str:
    """The Markdown summary: budget, repetition, phase x domain tokens, shortfalls."""
    m = manifest.data
    rows = rows if rows is not None else table_rows(manifest)
    tok = m["tokens"]
    lines = [
        f"# Mixture `{m['name']}`",
        "",
        (f"- spec hash `{m['spec_hash']}`, tokenizer `{m['tokenizer']}`, seed {m['spec']['seed']}, "
         f"max_epochs {m['spec']['max_epochs']}"),
        (f"- tokens: target {tok['target']:,}, planned {tok['planned']:,}, unique {tok['unique']:,} "
         f"(repetition multiplier {tok['multiplier']})"),
        f"- {m['rows']:,} document uses in {len(m['parts'])} part(s)",
        "",
        "## Tokens per phase x domain",
        "",
        "| phase | domain | weight | target | tokens | docs | uses | max epoch | supply tokens | shortfall |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['phase']} | {r['domain']} | {r['weight']:g} | {r['target']:,} | {r['tokens']:,} | "
                     f"{r['docs']:,} | {r['uses']:,} | {r['max_epoch']} | {r['supply_tokens']:,} | {r['shortfall']:,} |")
    if m["shortfalls"]:
        lines += ["", "## Shortfalls (built with allow_short)", ""]
        lines += [f"- phase `{s['phase']}`, domain `{s['domain']}`: short by {s['shortfall']:,} of {s['target']:,}"
                  for s in m["shortfalls"]]
    lines += ["", "![domain share](domain_share.png)", "", "![tokens](tokens.png)", ""]
    return "\n".join(lines)
