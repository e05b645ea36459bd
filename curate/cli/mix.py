"""``curate mix``: plan, build and show token-budgeted mixtures (a thin face over curate.mixture)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from curate.cli.common import StoreOpt, console, friendly

mix_app = typer.Typer(help="Plan, build and inspect token-budgeted mixtures.", no_args_is_help=True)
SpecArg = Annotated[Path, typer.Argument(help="Mixture spec (YAML).")]


def _table(rows: list[dict], title: str) -> None:
    from curate.render import rows_table

    console.print(rows_table(rows, title=title))


@mix_app.command("plan")
@friendly
def plan(spec: SpecArg, store: StoreOpt = "store") -> None:
    """Dry run: print the phase x domain token table and any shortfall; writes nothing."""
    from curate.mixture import load_spec, plan_mixture
    from curate.mixture.plan import shortfall_message

    sp = load_spec(spec)
    p = plan_mixture(store, sp)
    keys = ("phase", "domain", "weight", "target", "tokens", "docs", "occurrences", "max_epoch",
            "supply_tokens", "capacity", "shortfall")
    _table([{k: c[k] for k in keys} for c in p.table()], f"{sp.name}: plan (spec {sp.spec_hash()})")
    console.print(f"planned {p.tokens:,} of {sp.tokens:,} tokens")
    if p.shortfalls:
        console.print(f"[bold yellow]{shortfall_message(sp, p.shortfalls)}[/]")
        raise typer.Exit(1)


@mix_app.command("build")
@friendly
def build(
    spec: SpecArg,
    store: StoreOpt = "store",
    allow_short: Annotated[bool, typer.Option("--allow-short", help="Build even when supply is short (recorded).")] = False,
) -> None:
    """Plan and write mixtures/<name>/: ordered Parquet parts, plan.parquet, manifest.json, report."""
    from curate.mixture import build_mixture

    m = build_mixture(store, spec, allow_short=allow_short)
    t = m.data["tokens"]
    console.print(f"[bold]{m.name}[/]: {t['planned']:,} tokens ({t['unique']:,} unique, x{t['multiplier']}) "
                  f"in {m.data['rows']:,} document uses, {len(m.parts)} part(s) -> {m.store.uri_of(m.dir)}")
    for s in m.data["shortfalls"]:
        console.print(f"[yellow]short[/] {s['phase']}/{s['domain']}: {s['shortfall']:,} of {s['target']:,}")


@mix_app.command("inspect")
@friendly
def inspect(name: Annotated[str, typer.Argument(help="Mixture name.")], store: StoreOpt = "store") -> None:
    """Print a built mixture's phase x domain table, its score medians vs the pool, and where its report is."""
    from curate.mixture import MixtureManifest
    from curate.mixture.report import table_rows

    m = MixtureManifest.load(store, name)
    _table(table_rows(m), f"{name} (spec {m.data['spec_hash']}, fingerprint {m.fingerprint})")
    scores = m.store.read_json(f"{m.dir}/scores.json") or {}
    if scores:
        from curate.mixture.report import score_rows

        _table(score_rows(scores), "scores: pool vs selected documents")
    console.print(f"report: {m.store.uri_of(m.dir, 'report.md')}")


@mix_app.command("export")
@friendly
def export(
    name: Annotated[str, typer.Argument(help="Mixture name (built with `curate mix build`).")],
    format: Annotated[str, typer.Option("--format", "-f", help="megatron (Megatron-LM .bin/.idx per phase) or "
                                                               "tokens (flat uint16/uint32 file + offsets per "
                                                               "phase, for numpy.memmap)")] = "megatron",
    store: StoreOpt = "store",
    out: Annotated[str | None, typer.Option(help="Output folder (default: mixtures/NAME/export-FORMAT/ in the "
                                                 "store).")] = None,
    dtype: Annotated[str | None, typer.Option(help="Token dtype (default: uint16 when the vocabulary fits, "
                                                   "else int32 for megatron, uint32 for tokens).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace files already in the output folder.")] = False,
) -> None:
    """Write a built mixture as the files a pretraining framework reads: one output per phase (switch at the
    end-of-training phase), EOS after every document, the same tokens MixtureDataset streams. Recorded with
    sizes and xxh3-128 hashes in the mixture's manifest.

    Example: curate mix export demo-mix --format megatron --store demo-store   (then data_path.txt)"""
    from curate.mixture.export import export_mixture

    r = export_mixture(store, name, format, out, dtype=dtype, overwrite=overwrite)
    _table([{"phase": p["phase"], "documents": p["documents"], "tokens": p["tokens"],
             "files": ", ".join(p["files"])} for p in r["phases"]],
           f"{name} as {format} ({r['dtype']}, EOS {r['eos_id']}) in {r['dir']}")


# `show` was the first name of `inspect`; kept so existing scripts work
mix_app.command("show", hidden=True)(inspect)


def register(app: typer.Typer) -> None:
    """Add ``mix plan|build|inspect|export`` to the main app."""
    app.add_typer(mix_app, name="mix")
