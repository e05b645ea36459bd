"""What curate wrote beside the data, for ``curate browse``: model cards, mixture reports and MATES stages
(their JSON and PNG plots), read from the store as they are; nothing is recomputed.
"""

from __future__ import annotations

from typing import Any

from curate.mixture.manifest import MixtureManifest
from curate.mixture.report import score_rows, table_rows
from curate.store import Store

# the store folders whose PNGs a page may show (plots curate drew there); nothing else is served
PICTURE_ROOTS = ("models", "mixtures", "mates", "experiments")


# what a MATES stage's influence card says about how well it predicts (shown above the plots)
STAGE_METRICS = ("kind", "probes", "spearman_heldout", "pvalue", "spearman_train", "heldout_how", "encoder")


def _pictures(store: Store, folder: str) -> list[str]:
    return store.list_files(folder, suffix=".png")


def models(store: Store) -> list[dict[str, Any]]:
    """Every model directory with its ``card.json`` (None when it has none) and its plots."""
    return [{"name": name, "card": store.read_json(f"models/{name}/card.json"),
             "family": store.read_json(f"models/{name}/family.json"),  # a PreSelect family's members
             "pictures": _pictures(store, f"models/{name}")} for name in store.list_dirs("models")]


def mixtures(store: Store) -> list[dict[str, Any]]:
    """Every built mixture: its totals, phase x domain rows, scores kept vs pool and plots."""
    out = []
    for name in store.list_dirs("mixtures"):
        data = store.read_json(f"mixtures/{name}/manifest.json")
        if data is None:
            continue  # a mixture being built, or an export folder: nothing to show yet
        manifest = MixtureManifest(store, name, data)
        scores = store.read_json(f"mixtures/{name}/scores.json") or {}
        out.append({"name": name, "tokens": data.get("tokens"), "rows": table_rows(manifest),
                    "scores": score_rows(scores), "pictures": _pictures(store, f"mixtures/{name}")})
    return out


def mixture_docs(store: Store, name: str) -> str | None:
    """A query for the ``doc_id`` of every document mixture ``name`` uses (its plan), or None when the store
    has no such built mixture or DuckDB cannot read it there (an object store)."""
    data = store.read_json(f"mixtures/{name}/manifest.json") if name in store.list_dirs("mixtures") else None
    if data is None or not store.is_local:
        return None
    plan = store.path(f"mixtures/{name}/{data.get('plan', 'plan.parquet')}").replace("'", "''")
    return f"SELECT doc_id FROM read_parquet('{plan}')"


def mates_stages(store: Store) -> list[dict[str, Any]]:
    """Every MATES run's stages with the stage summary (``stage.json``), influence card and plots."""
    out = []
    for run in store.list_dirs("mates"):
        for stage in store.list_dirs(f"mates/{run}"):
            folder = f"mates/{run}/{stage}"
            card = store.read_json(f"{folder}/influence_card.json")
            out.append({"name": f"{run}/{stage}", "summary": store.read_json(f"{folder}/stage.json"), "card": card,
                        "metrics": {k: card[k] for k in STAGE_METRICS if k in card} if isinstance(card, dict) else {},
                        "pictures": _pictures(store, folder)})
    return out


def picture(store: Store, path: str) -> bytes | None:
    """The PNG at store-relative ``path`` when it lies under :data:`PICTURE_ROOTS`, else None (never a
    path that climbs out, never another kind of file)."""
    parts = path.split("/")
    if (len(parts) < 2 or parts[0] not in PICTURE_ROOTS or not path.endswith(".png")
            or any(p in ("", ".", "..") or "\\" in p for p in parts)):
        return None
    return store.read_bytes(path)


def experiments(store: Store) -> list[dict[str, Any]]:
    """Every selection-experiment report copied into the store (``experiments/<scale>/``, by ``curate
    experiment``): its report.md as HTML (raw HTML in it escaped, its plots served by ``/picture/``)."""
    out = []
    for scale in store.list_dirs(store.experiments_dir()):
        folder = store.experiments_dir(scale)
        text = store.read_bytes(f"{folder}/report.md")  # the name curate.experiment.report gives it
        if text is not None:
            out.append({"name": scale, "html": markdown_html(text.decode(errors="replace"), folder)})
    return out


def markdown_html(text: str, folder: str) -> str:
    """``text`` (Markdown) as HTML: tables on, raw HTML escaped (not passed through), and each relative
    picture pointed at ``/picture/<folder>/<name>``."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(text)
    for token in tokens:
        for child in token.children or []:
            src = child.attrGet("src") if child.type == "image" else None
            if src and "://" not in src and not src.startswith(("/", "data:")):
                child.attrSet("src", f"/picture/{folder}/{src}")
                child.attrSet("class", "picture")
    return md.renderer.render(tokens, md.options, {})
