"""What the experiment needs in the store, made when missing: the corpora, and each method's feature table.

An empty (or new) store gets the embedded corpus (a seeded subset at the ``tiny``
scale) as corpus ``demo`` (the pool) plus ``heldout`` (the target). A feature table
a method reads is used as it is when it covers the pool, whatever made it; when the
table is missing it is made by the scale's recipe (the same models ``curate demo``
trains); a table that covers only part of the pool is refused with the command
that completes it, never silently replaced.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from curate.errors import ConfigError
from curate.experiment.methods import METHODS, pool_where
from curate.experiment.scales import FeatureRecipe, Scale
from curate.store import Store

TARGET_CORPUS = "heldout"
#: how each feature table is made by hand (named in refusals)
COMMANDS = {
    "perplexity": "curate train-lm --preset micro && curate score --scorers perplexity --model tiny-lm",
    "el2n": "curate train-lm --name proxy --preset micro --seeds 2 --tokens 100000 && "
            "curate score --scorers el2n --model proxy",
}


def prepare_store(store: str | Path | Store, scale: Scale, pool: str, *, log: Callable[[str], None]) -> Store:
    """Open ``store``; an empty one gets the embedded corpus. Refuses a store without the pool or the target."""
    st = Store.of(store, create=True)
    corpora = st.corpora()
    if not corpora:
        log(f"empty store: ingesting the embedded corpus ({_subset_note(scale)})")
        ingest_subset(st, scale)
        corpora = st.corpora()
    missing = [c for c in (pool, TARGET_CORPUS) if c not in corpora]
    if missing:
        raise ConfigError(f"store {st.uri} has no corpus {' or '.join(map(repr, missing))} (it has "
                          f"{', '.join(corpora)}): the experiment trains on corpus {pool!r} and measures on "
                          f"{TARGET_CORPUS!r}; use a store made by `curate demo`, or a new directory")
    return st


def _subset_note(scale: Scale) -> str:
    if scale.pool_docs is None:
        return "whole pool and held-out split"
    cut = f", first {scale.max_chars:,} characters of each" if scale.max_chars else ""
    return f"{scale.pool_docs:,} pool and {scale.heldout_docs:,} held-out documents, every domain{cut}"


def ingest_subset(st: Store, scale: Scale) -> None:
    """The embedded pool as ``demo`` and held-out split as ``heldout`` (a spread subset when the scale says so)."""
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from curate.embedded import CORPUS_FIELDS, embedded_corpus
    from curate.ingestion import ingest

    if scale.pool_docs is None and scale.heldout_docs is None:
        from curate.embedded import ingest_embedded

        ingest_embedded(st, progress=False)  # exactly what `curate demo` ingests: the demo reuses it
        return
    splits = embedded_corpus()
    with tempfile.TemporaryDirectory() as tmp:
        for corpus, split, n in (("demo", "train", scale.pool_docs), (TARGET_CORPUS, "heldout", scale.heldout_docs)):
            path = splits[split]
            if n is not None:
                table = pq.read_table(path)
                # evenly spaced rows: the files are grouped by source, so every domain is represented
                idx = np.linspace(0, table.num_rows - 1, min(n, table.num_rows)).round().astype(np.int64)
                table = table.take(np.unique(idx))
                if scale.max_chars:  # short documents: a small budget then still spans many of them
                    at = table.schema.get_field_index("text")
                    table = table.set_column(at, "text", pc.utf8_slice_codeunits(table.column(at), 0, scale.max_chars))
                path = Path(tmp) / f"{split}.parquet"
                pq.write_table(table, path)
            ingest([path], st, corpus, fields=CORPUS_FIELDS, progress=False)


def coverage(con: Any, table: str, column: str, pool: str) -> tuple[int, int]:
    """(pool documents with a value in ``table.column``, pool documents)."""
    return con.sql(f'SELECT count(f."{column}"), count(*) FROM docs LEFT JOIN "{table}" f USING (doc_id) '
                   f"WHERE docs.{pool_where(pool)}").fetchall()[0]


def ensure_features(st: Store, methods: list[str], scale: Scale, pool: str, *, workers: int | None = 0,
                    progress: bool | None = False, log: Callable[[str], None]) -> dict[str, Any]:
    """Make every feature table ``methods`` read; returns what was found or made (and how long it took)."""
    from curate.query import connect

    needed = {t: c for m in methods for t, c in METHODS[m].needs}
    report: dict[str, Any] = {}
    have = set(st.feature_tables())
    for table, column in sorted(needed.items()):
        if table in have:
            con = connect(st)
            got, total = coverage(con, table, column, pool)
            con.close()
            if got < total:
                raise ConfigError(f"feature table {table!r} has {column} for {got:,} of {total:,} documents of "
                                  f"corpus {pool!r}: finish it (e.g. {COMMANDS[table]}) or remove "
                                  f"{st.uri_of(st.features_dir(table))} to let the experiment make it")
            report[table] = {"status": "found", "documents": total}
            continue
        t0 = time.perf_counter()
        log(f"feature table {table!r} is missing: making it ({COMMANDS[table]})")
        made = MAKERS[table](st, scale.features, pool, workers=workers, progress=progress, threads=scale.threads)
        report[table] = {"status": "made", "seconds": round(time.perf_counter() - t0, 1), **made}
    return report


def _train(st: Store, spec: dict[str, Any], threads: int, progress: bool | None) -> list[str]:
    """Train (or reuse: same request) the model(s) of a recipe entry; their checkpoint directories."""
    from curate.lm.train import seed_runs, train_lm

    args = {k: v for k, v in spec.items() if k not in ("name", "seeds")}
    paths = []
    for name, seed in seed_runs(spec["name"], int(args.pop("seed", 0)), int(spec.get("seeds", 1))):
        train_lm(st, name, seed=seed, threads=threads, progress=progress, **args)
        paths.append(st.path(st.models_dir(name)))
    return paths


def _score(st: Store, scorer: Any, pool: str, workers: int | None, progress: bool | None) -> dict[str, Any]:
    from curate.errors import CurateError
    from curate.execute import run_scorer

    report = run_scorer(st, scorer, corpora=[pool], workers=workers, progress=progress)
    if report.failed:
        raise CurateError(f"scoring {scorer.name} failed on {len(report.failed)} shard(s): {report.failed[0]['error']}")
    return {"rows": report.rows}


def make_perplexity(st: Store, recipe: FeatureRecipe, pool: str, *, workers: int | None, progress: bool | None,
                    threads: int) -> dict[str, Any]:
    from scorers.registry import get_scorer

    (path,) = _train(st, recipe.reference, threads, progress)
    scorer = get_scorer("perplexity", model_path=path, max_tokens=recipe.perplexity_max_tokens)
    return {"model": recipe.reference["name"], **_score(st, scorer, pool, workers, progress)}


def make_el2n(st: Store, recipe: FeatureRecipe, pool: str, *, workers: int | None, progress: bool | None,
              threads: int) -> dict[str, Any]:
    from scorers.registry import get_scorer

    paths = _train(st, recipe.proxies, threads, progress)
    scorer = get_scorer("el2n", model_paths=paths, max_tokens=recipe.el2n_max_tokens)
    return {"models": [Path(p).name for p in paths], **_score(st, scorer, pool, workers, progress)}


MAKERS: dict[str, Callable[..., dict[str, Any]]] = {"perplexity": make_perplexity, "el2n": make_el2n}
