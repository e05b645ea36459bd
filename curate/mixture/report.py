"""The mixture report: a Markdown summary and PNG plots (matplotlib, Agg backend).

- ``domain_share.png``: each domain's share of the tokens across training steps
  (read from ``plan.parquet``), so the phase switch is visible;
- ``tokens.png``: tokens per phase x domain;
- ``scores.png``: each score's distribution over the pool vs over the selected documents
  (from ``scores.json``, written by the build while its plan is at hand);
- ``report.md``: the phase x domain token table, repetition, shortfalls, score medians.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow.parquet as pq

from curate.mixture.manifest import MixtureManifest
from curate.render import markdown_table, png_bytes

STEPS = 50  # bins along training for the share plot (more bins: noise from single long documents)
#: doc_features columns whose pool-vs-selected distributions the report shows, when the store has them
SCORE_COLUMNS = ("preselect_score", "bits_per_byte", "el2n", "grand", "alpha_ratio", "domain_score")
SCORE_BINS = 40


def score_distributions(con: Any, features: str, pool_sql: str, selected_sql: str,
                        columns: list[str]) -> dict[str, Any]:
    """Histograms (shared edges) and medians of ``columns`` over the pool and over the selected documents.

    ``features`` is a doc_features view or subquery; ``pool_sql`` and ``selected_sql`` return
    ``doc_id`` (each document once). Everything is aggregated in DuckDB: no score column is
    loaded into Python.
    """
    out: dict[str, Any] = {}
    for col in columns:
        q = f'SELECT "{col}"::DOUBLE AS v FROM {features} f WHERE doc_id IN ({{ids}}) AND isfinite("{col}"::DOUBLE)'
        lo, hi = con.execute(f"SELECT min(v), max(v) FROM ({q.format(ids=pool_sql)})").fetchone()
        if lo is None:
            continue
        width = (hi - lo) / SCORE_BINS or 1.0
        entry: dict[str, Any] = {"edges": [lo + i * width for i in range(SCORE_BINS + 1)]}
        for key, ids in (("pool", pool_sql), ("selected", selected_sql)):
            counts = [0] * SCORE_BINS
            for b, c in con.execute(f"SELECT least(floor((v - {lo}) / {width})::INTEGER, {SCORE_BINS - 1}) AS b, "
                                    f"count(*) FROM ({q.format(ids=ids)}) GROUP BY b").fetchall():
                counts[int(b)] = int(c)
            med = con.execute(f"SELECT median(v) FROM ({q.format(ids=ids)})").fetchone()[0]
            entry[key] = {"counts": counts, "docs": sum(counts), "median": med}
        out[col] = entry
    return out


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


def score_rows(scores: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per score: documents and median over the pool and over the selected documents."""
    return [{"score": col, "pool docs": e["pool"]["docs"], "pool median": e["pool"]["median"],
             "selected docs": e["selected"]["docs"], "selected median": e["selected"]["median"]}
            for col, e in sorted(scores.items())]


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
    st.write_bytes(f"{base}/domain_share.png", png_bytes(fig))

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
    st.write_bytes(f"{base}/tokens.png", png_bytes(fig))

    written = ["report.md", "domain_share.png", "tokens.png"]
    scores = st.read_json(f"{base}/scores.json") or {}
    if scores:
        fig, axes = plt.subplots(1, len(scores), figsize=(4 * len(scores), 3.4), squeeze=False)
        for ax, (col, e) in zip(axes[0], sorted(scores.items())):
            edges = np.asarray(e["edges"])
            for key, color in (("pool", "tab:gray"), ("selected", "tab:blue")):
                counts = np.asarray(e[key]["counts"], dtype=float)
                ax.stairs(counts / max(counts.sum(), 1), edges, label=f"{key} ({e[key]['docs']:,})",
                          fill=key == "pool", alpha=0.5 if key == "pool" else 1.0, color=color)
            ax.set_title(col)
            ax.set_ylabel("share of documents")
            ax.legend(fontsize=7)
        fig.suptitle(f"{manifest.name}: scores of the selected documents vs the pool")
        st.write_bytes(f"{base}/scores.png", png_bytes(fig))
        written.append("scores.png")
    st.write_bytes(f"{base}/report.md", markdown(manifest, rows, scores).encode())
    return [f"{base}/{n}" for n in written]


def markdown(manifest: MixtureManifest, rows: list[dict[str, Any]] | None = None,
             scores: dict[str, Any] | None = None) -> str:
    """The Markdown summary: budget, repetition, phase x domain tokens, shortfalls, score medians."""
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
        *markdown_table(["phase", "domain", "weight", "target", "tokens", "docs", "uses", "max epoch", "supply tokens",
                         "shortfall"],
                        [[r["phase"], r["domain"], f"{r['weight']:g}", f"{r['target']:,}", f"{r['tokens']:,}",
                          f"{r['docs']:,}", f"{r['uses']:,}", r["max_epoch"], f"{r['supply_tokens']:,}",
                          f"{r['shortfall']:,}"] for r in rows], align="llrrrrrrrr"),
    ]
    if m["shortfalls"]:
        lines += ["", "## Shortfalls (built with allow_short)", ""]
        lines += [f"- phase `{s['phase']}`, domain `{s['domain']}`: short by {s['shortfall']:,} of {s['target']:,}"
                  for s in m["shortfalls"]]
    if scores:
        def g(v: float | None) -> str:
            return "—" if v is None else f"{v:.6g}"

        lines += ["", "## Scores: pool vs selected", "",
                  *markdown_table(["score", "pool docs", "pool median", "selected docs", "selected median"],
                                  [[r["score"], f"{r['pool docs']:,}", g(r["pool median"]), f"{r['selected docs']:,}",
                                    g(r["selected median"])] for r in score_rows(scores)], align="lrrrr")]
    lines += ["", "![domain share](domain_share.png)", "", "![tokens](tokens.png)", ""]
    if scores:
        lines += ["![scores](scores.png)", ""]
    return "\n".join(lines)
