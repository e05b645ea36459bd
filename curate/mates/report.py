"""A MATES stage's report: oracle distribution, influence model quality, selected domain shares, timings.

``report.md`` with ``oracle.png`` (oracle change in reference loss; predicted
vs oracle on held-out probes) and ``domains.png`` (pool vs selected domain
shares), beside the stage's other artifacts. The Prefect flow publishes the
same Markdown as an artifact; this module never imports Prefect.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from curate.mates.oracle import OracleResult
from curate.render import markdown_table, png_bytes
from curate.store import Store

REPORT_FILE, ORACLE_PLOT, DOMAIN_PLOT = "report.md", "oracle.png", "domains.png"


def _figures(summary: dict[str, Any], oracle: OracleResult, heldout: np.ndarray) -> tuple[bytes, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    delta = oracle.delta[np.isfinite(oracle.delta)]
    a.hist(delta, bins=30, color="tab:blue")
    a.axvline(0, color="black", lw=0.8)
    a.set_xlabel("reference loss after one step - before (nats/token); < 0 helps")
    a.set_ylabel("probes")
    a.set_title(f"oracle over {len(delta)} probes (pre-step loss {oracle.pre_loss:.4f})")
    ok = np.isfinite(heldout) & np.isfinite(oracle.post_loss)
    z = (oracle.post_loss - np.nanmean(oracle.post_loss)) / (np.nanstd(oracle.post_loss) or 1.0)
    b.scatter(z[ok], heldout[ok], s=8, alpha=0.6)
    b.set_xlabel("oracle (z-scored post-step loss)")
    b.set_ylabel("held-out prediction")
    b.set_title(f"Spearman {summary['influence']['spearman_heldout']:.3f} on {int(ok.sum())} held-out probes")
    oracle_png = png_bytes(fig)

    sel = summary["selection"]
    domains = sorted(set(sel["pool_domain_shares"]) | set(sel["selected_domain_shares"]))
    x = np.arange(len(domains))
    fig, ax = plt.subplots(figsize=(max(6, len(domains) * 0.9), 4))
    ax.bar(x - 0.2, [sel["pool_domain_shares"].get(d, 0) for d in domains], 0.4, label=f"pool ({sel['pool']})")
    ax.bar(x + 0.2, [sel["selected_domain_shares"].get(d, 0) for d in domains], 0.4, label=f"selected ({sel['kept']})")
    ax.set_xticks(x, domains, rotation=30, ha="right")
    ax.set_ylabel("share of documents")
    ax.set_title(f"stage {summary['stage']}: domain shares, keep {sel['keep']:.0%} by Gumbel-top-k (tau {sel['tau']})")
    ax.legend()
    return oracle_png, png_bytes(fig)


def markdown(summary: dict[str, Any], probes: pa.Table, oracle: OracleResult) -> str:
    """The stage report as Markdown (also the Prefect artifact's body)."""
    o, inf, sel, d = summary["oracle"], summary["influence"], summary["selection"], summary["data"]
    lines = [
        f"# MATES run `{summary['run']}`, stage {summary['stage']}",
        "",
        f"- model probed: {summary['proxy']}; optimizer moments: {o['moments']}",
        (f"- oracle: {o['probes']} probes from the held-out slice `{d['probe_slice']}` (overlap with the pool: "
         f"{d['probe_pool_overlap']}); reference set {d['reference_docs']} documents, pre-step loss "
         f"{o['pre_loss']:.5f} nats/token; change after one step mean {o['delta_mean']:+.2e} "
         f"(sd {o['delta_std']:.2e}, min {o['delta_min']:+.2e}, max {o['delta_max']:+.2e})"),
        (f"- **{o['seconds_per_probe']:.4f} s per probe** ({o['seconds']:.1f} s for {o['probes']} on "
         f"{o['workers']} worker(s); setup {o['setup_seconds']:.2f} s)"),
        (f"- influence model ({inf['kind']}, `models/{summary['influence_model']}/`): **Spearman "
         f"{inf['spearman_heldout']:.3f}** on {inf['heldout_probes']} held-out probes ({inf['heldout_how']}); "
         f"permutation p = {inf['pvalue']:.4f} (2,000 shuffles); on its training probes {inf['spearman_train']:.3f}"),
        (f"- selection: kept {sel['kept']} of {sel['pool']} candidates ({sel['keep']:.0%}) by exact Gumbel-top-k "
         f"at tau {sel['tau']}; predictions in feature table `{summary['table']}` "
         f"({sel['predict_seconds']:.1f} s); stage wall time {summary['seconds']:.1f} s"),
        "",
        f"![oracle]({ORACLE_PLOT})",
        "",
        "## Domain shares",
        "",
        f"![domains]({DOMAIN_PLOT})",
        "",
    ]
    doms = sorted(set(sel["pool_domain_shares"]) | set(sel["selected_domain_shares"]))
    by_dom: dict[str, list[float]] = {}
    for dom, delta in zip(probes.column("domain").to_pylist(), oracle.delta):
        if np.isfinite(delta):
            by_dom.setdefault(str(dom), []).append(float(delta))
    lines += markdown_table(["domain", "pool share", "selected share", "probes", "mean oracle change"],
                   [[dm, f"{sel['pool_domain_shares'].get(dm, 0):.1%}", f"{sel['selected_domain_shares'].get(dm, 0):.1%}",
                     len(by_dom.get(dm, [])), f"{np.mean(by_dom[dm]):+.2e}" if by_dom.get(dm) else ""] for dm in doms])
    lines += ["", "Files: probes.parquet, pool.parquet, influence_card.json, selection.parquet, selection.sql, stage.json."]
    return "\n".join(lines) + "\n"


def write_report(st: Store, base: str, summary: dict[str, Any], probes: pa.Table, oracle: OracleResult,
                 heldout: np.ndarray) -> list[str]:
    """Write report.md, oracle.png and domains.png under ``base``; returns their store paths."""
    oracle_png, domain_png = _figures(summary, oracle, heldout)
    st.write_bytes(f"{base}/{ORACLE_PLOT}", oracle_png)
    st.write_bytes(f"{base}/{DOMAIN_PLOT}", domain_png)
    st.write_bytes(f"{base}/{REPORT_FILE}", markdown(summary, probes, oracle).encode())
    return [f"{base}/{n}" for n in (REPORT_FILE, ORACLE_PLOT, DOMAIN_PLOT)]
