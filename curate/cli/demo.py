"""``curate demo``: the whole pipeline on the embedded real corpus, then what it produced (registered by ``curate.cli``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from curate.cli.common import StoreOpt, console, friendly


@friendly
def demo(
    store: StoreOpt = "demo-store",
    fresh: Annotated[bool, typer.Option(help="Delete the demo store first and start from nothing.")] = False,
    workers: Annotated[int | None, typer.Option(help="Ray workers (default: one per CPU).")] = None,
) -> None:
    """Run the whole pipeline on the embedded real corpus (8 domains): ingest → train the domain
    model and the reference LMs → score (heuristics, langid, domain, perplexity, EL2N, GraNd, PreSelect)
    through Prefect on Ray, plus a PreSelect selector trained from a reference family → one MATES
    stage → near-duplicate clusters → the pool checked against the held-out split (contamination) →
    a two-phase mixture a training job streams → DuckDB reports → a static report of the store's pages."""
    from curate.query import SQL_DIR, connect
    from curate.render import relation_table, rows_table
    from curate.stats import domain_table
    from flows.demo import demo_flow

    console.rule("[bold]curate demo")
    result = demo_flow(str(store), fresh=fresh, workers=workers)
    console.rule("[bold]1. ingest")
    for s in result["ingests"]:
        s.pop("inputs", None)
        console.print(f"[bold]{s['corpus']}[/]: {s['status']} — read {s['read']:,} = kept {s['kept']:,} + "
                      f"quarantined {s['quarantined']:,} + duplicates {s['duplicates']:,}")
    card = result["domain_model"]
    console.rule("[bold]2. domain model (fastText, trained on the pool's labels)")
    console.print(rows_table([{"domain": d, **m} for d, m in card["per_domain"].items()],
                             title=f"validation accuracy {card['accuracy']:.3f} on {card['valid_docs']:,} docs"))
    console.rule("[bold]3. reference LMs (byte-level Llama, trained here on CPU)")
    console.print(rows_table([{"model": c["name"], "params": f"{c['params']:,}", "tokens seen": f"{c['tokens_seen']:,}",
                               "held-out bits/byte": c["heldout_bits_per_byte"], "wall s": c["wall_seconds"]}
                              for c in result["lms"]],
                             title="tiny-lm scores perplexity; proxy-s0/s1 (trained briefly) are averaged for EL2N and GraNd"))
    console.rule("[bold]4. scoring (Prefect flow → Ray actors)")
    console.print(rows_table(result["scoring"], title="per scorer (re-runs skip shards that are up to date)"))
    con = connect(store)
    console.rule("[bold]5. DuckDB over the store")
    console.print(relation_table(domain_table(con), title="documents per domain"))
    quarantine = (SQL_DIR / "quarantine_report.sql").read_text()
    console.print(relation_table(con.sql(quarantine), title="quarantine (sql/quarantine_report.sql)"))
    query = (SQL_DIR / "domain_quality.sql").read_text()
    console.print(relation_table(con.sql(query), title="per-domain feature averages (sql/domain_quality.sql)"))
    _lm_section(con)
    _preselect_section(con, result["preselect"]["card"])
    _mates_section(result["mates"])
    _mixture_section(store, result["mixture"]["name"])
    _dedup_section(con, result["dedup"])
    _decontam_section(con, result["decontam"])
    _report_section(store, result["report"])
    console.print(f"\nstore: [bold]{store}[/] — try: curate sql --store {store} sql/perplexity_band.sql")


def _lm_section(con: Any) -> None:
    from curate.query import SQL_DIR
    from curate.render import relation_table
    from curate.selection import band_sql

    console.rule("[bold]6. perplexity, EL2N and GraNd per domain")
    console.print(relation_table(con.sql((SQL_DIR / "lm_scores_by_domain.sql").read_text()),
                                 title="sql/lm_scores_by_domain.sql (medians; Spearman = agreement with bits/byte)"))
    band = band_sql("bits_per_byte", keep="middle", fraction=0.5)
    console.print(relation_table(con.sql(
        "SELECT domain, count(*) AS kept, round(min(score), 3) AS from_bpb, round(max(score), 3) AS to_bpb, "
        f"round(sum(n_bytes) / 1e6, 2) AS mb FROM ({band}) GROUP BY 1 ORDER BY 1"),
        title="CCNet-style middle 50% by bits/byte, per domain (curate.selection.percentile_band = sql/perplexity_band.sql)"))
    console.print(relation_table(con.sql(
        "WITH r AS (SELECT domain, el2n, replace(left(text, 70), chr(10), ' ') AS text, "
        "row_number() OVER (PARTITION BY domain ORDER BY el2n DESC, doc_id) AS hard, "
        "row_number() OVER (PARTITION BY domain ORDER BY el2n, doc_id) AS easy "
        "FROM doc_features WHERE el2n IS NOT NULL) "
        "SELECT domain, CASE WHEN hard = 1 THEN 'hardest' ELSE 'easiest' END AS el2n_end, round(el2n, 3) AS el2n, text "
        "FROM r WHERE hard = 1 OR easy = 1 ORDER BY domain, el2n DESC"),
        title="what EL2N keeps at each end (keep-hard: sql/el2n_keep_hard.sql, keep-easy: sql/el2n_keep_easy.sql)"))


def _preselect_section(con: Any, card: dict[str, Any]) -> None:
    from curate.render import relation_table, rows_table
    from curate.selection import top_share_sql

    console.rule("[bold]7. PreSelect (reference family -> predictive strength -> fastText selector)")
    console.print(rows_table([{"rank": m["rank"], "member": m["name"], "params": f"{m['params']:,}",
                               "target bits/char": round(m["target_bpc"], 4)} for m in card["family"]],
                             title=f"family ranked by {card['ranked_by']} on {card['target']}"))
    st = card["strength"]
    dist = ", ".join(f"{k}:{v}" for k, v in sorted(st["distribution"].items(), key=lambda kv: int(kv[0])))
    console.print(f"strength over {card['sample_docs']:,} sampled docs (score:docs) {dist}; perfect {st['perfect']} "
                  f"({st['perfect_share']:.1%}); {card['positives']} positives vs {card['negatives']} negatives; "
                  f"selector validation AUC {card['valid_auc']:.3f}")
    top = top_share_sql("preselect_score", where="corpus = 'demo'")  # the pool, not the held-out target
    console.print(relation_table(con.sql(
        f"SELECT domain, count(*) AS docs, round(sum(n_chars) / 1e6, 2) AS mchars FROM ({top}) t "
        "JOIN docs USING (doc_id) GROUP BY 1 ORDER BY mchars DESC"),
        title="top 10% of the pool by characters, ranked by preselect_score (sql/select_preselect_top.sql)"))


def _mates_section(summary: dict[str, Any]) -> None:
    from curate.cli.mates import stage_row
    from curate.render import rows_table

    sel, base = summary["selection"], f"mates/{summary['run']}/stage-{summary['stage']}"
    console.rule("[bold]8. MATES (one stage from tiny-lm: probes -> influence model -> Gumbel-top-k)")
    console.print(rows_table([stage_row(summary)], title="oracle = held-out loss after one AdamW step on the probe; "
                                                         "Spearman of the influence model on held-out probes"))
    shares = sorted(sel["pool_domain_shares"], key=lambda d: -sel["selected_domain_shares"].get(d, 0.0))
    console.print(rows_table([{"domain": d, "pool share": round(sel["pool_domain_shares"][d], 3),
                               "selected share": round(sel["selected_domain_shares"].get(d, 0.0), 3)} for d in shares],
                             title=f"what the stage kept ({sel['kept']:,} of {sel['pool']:,}): a mixture can "
                                   f"`select: {base}/selection.sql`"))


def _dedup_section(con: Any, s: dict[str, Any]) -> None:
    from curate.query import SQL_DIR
    from curate.render import relation_table

    console.rule("[bold]10. near-duplicates (MinHash LSH, 14 bands x 8 rows on word 5-grams, pairs verified)")
    console.print(f"{s['clusters']:,} clusters hold {s['in_clusters']:,} of {s['documents']:,} documents; "
                  f"{s['removed']:,} are removable copies ({s['removed'] / max(s['documents'], 1):.1%}): "
                  + ", ".join(f"{r['name']} {r['removed']:,}" for r in s["by_domain"] if r["removed"]))
    query = (SQL_DIR / "near_dup_clusters.sql").read_text().replace("LIMIT 20", "LIMIT 6")
    console.print(relation_table(con.sql(query), title="the largest near-duplicate clusters: the kept document's "
                                                       "opening and a removed copy's (sql/near_dup_clusters.sql)"))
    console.print("a mixture keeps one copy of each with `where: dup_keep` (sql/dedup_near.sql lists the keep set)")


def _decontam_section(con: Any, s: dict[str, Any]) -> None:
    from curate.query import SQL_DIR
    from curate.render import relation_table

    console.rule("[bold]11. contamination (the pool against corpus heldout, word 13-grams)")
    shown = ", ".join(f"{r['corpus']}/{r['domain']} {r['contaminated']:,}" for r in s["by_corpus_domain"])
    console.print(f"{s['contaminated']:,} documents outside heldout hold at least half of a held-out document"
                  + (f": {shown}" if shown else ""))
    query = (SQL_DIR / "contamination.sql").read_text().replace("SELECT d.corpus, d.domain, d.doc_id,",
                                                                 "SELECT d.corpus, d.domain,")
    console.print(relation_table(con.sql(f"SELECT * FROM ({query}) WHERE corpus = 'demo' LIMIT 5"),
                                 title="what leaked into the pool, from which held-out document (sql/contamination.sql)"))
    console.print("a mixture drops it with `where: NOT contaminated` (the demo's pool is corpus demo)")


def _report_section(store: str, report: dict[str, Any]) -> None:
    from pathlib import Path

    console.rule("[bold]12. look at the data (static report; `curate browse` serves the same pages live)")
    console.print(report["line"])
    if report["out"]:
        console.print(f"open {Path(report['out'], 'index.html').resolve().as_uri()} — or [cyan]curate browse --store "
                      f"{store}[/] for filters, SQL and every document; larger reports: [cyan]curate report[/]")


def _mixture_section(store: str, name: str) -> None:
    from curate.mixture import MixtureManifest
    from curate.mixture.loader import MixtureDataset
    from curate.mixture.report import score_rows, table_rows
    from curate.render import rows_table

    mix = MixtureManifest.load(store, name)
    tok = mix.data["tokens"]
    console.rule("[bold]9. mixture (examples/mixtures/demo.yaml: PreSelect + perplexity selection; main 85% + "
                 "end-of-training anneal 15%)")
    console.print(rows_table(table_rows(mix), title=f"{mix.name}: {tok['planned']:,} tokens, {tok['unique']:,} unique "
                                                     f"(x{tok['multiplier']}), phase x domain"))
    ds = MixtureDataset(store, mix.name, seq_len=256)
    first = next(iter(ds))
    console.print(f"curate.MixtureDataset streams it: {ds.total_windows:,} windows of 256+1 byte tokens; the first starts "
                  f"{bytes(int(t) for t in first[:60] if int(t) < 256).decode('utf-8', 'replace')!r}…")
    scores = mix.store.read_json(f"{mix.dir}/scores.json") or {}
    if scores:
        console.print(rows_table(score_rows(scores),
                                 title="what the selection kept: score medians, pool vs selected documents"))
    console.print(f"report with plots: {mix.store.uri_of(mix.dir, 'report.md')} "
                  "(domain_share.png, tokens.png, scores.png)")
    from curate.lineage import at_step, first_step_of_phase

    last = mix.data["spec"]["phases"][-1]["name"]
    step = first_step_of_phase(store, mix.name, last, batch_size=4, seq_len=256)
    seen = at_step(store, mix.name, step, batch_size=4, seq_len=256).select(
        ["window", "token_from", "token_to", "phase", "domain", "epoch", "corpus", "source", "preselect_score"])
    console.print(rows_table(seen.to_pylist(), title=f"lineage: what step {step:,} saw (the first of phase {last!r}; "
                                                     "4 windows of 257 tokens) — curate lineage --step"))
    for fmt, rec in sorted(mix.data.get("exports", {}).items()):
        files = ", ".join(f"{n} ({f['bytes'] / 1e6:.1f} MB)" for p in rec["phases"] for n, f in p["files"].items())
        console.print(f"exported for trainers as [bold]{fmt}[/] ({rec['dtype']}, EOS {rec['eos_id']}, "
                      f"{rec['tokens']:,} tokens): {files} in {rec['dir']}")


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the main app."""
    app.command("demo")(demo)
