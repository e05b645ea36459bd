"""``heuristics``: curate's ``HeuristicsScorer`` through the engine vs datatrove's Gopher filters.

- ours: ``run_scorer(HeuristicsScorer)`` on Ray actors over the whole corpus (every Gopher
  quality + repetition signal for every document, stored as a feature table).
- baseline: datatrove ParquetReader → GopherRepetitionFilter → GopherQualityFilter → JsonlWriter
  (ids only), as many tasks/workers as curate has actors. Thresholds are set so that no document
  fails a check, so every check runs on every document, as curate computes every signal (datatrove's
  defaults stop at a document's first failed check; that run is recorded in the details too).
  datatrove tokenizes words with spaCy and is ~30× slower, so it runs on a random subset
  (the first 2,000 documents of the shuffled corpus; 500 with --quick) and MB/s are compared.
Goal: ≥ 2× MB/s. Steady state on both sides (start-up excluded), as in the fasttext benchmark.
"""

from __future__ import annotations

from typing import Any

from benchmarks._common import (
    CORES,
    TMP,
    build_store,
    corpus_table,
    datatrove_python,
    datatrove_version,
    engine_throughput,
    log,
    ray_session,
    row,
    run_datatrove_job,
    shard_rows_for,
    text_mb,
    unavailable,
)

GOAL = 2.0
N_SHARDS = {True: 4, False: 12}


def store_for(quick: bool) -> tuple[Any, dict[str, Any]]:
    table = corpus_table(quick)
    return build_store(f"heur-{'quick' if quick else 'full'}", table, shard_rows_for(table.num_rows, N_SHARDS[quick]))


_MEMO: dict[tuple, dict[str, Any]] = {}


def curate_throughput(quick: bool, workers: int) -> dict[str, Any]:
    """Engine throughput of the heuristics scorer (memoized per process: ray-scaling reuses it)."""
    from scorers.heuristics import HeuristicsScorer

    key = (quick, workers)
    if key not in _MEMO:
        store, info = store_for(quick)
        with ray_session() as ray_s:
            res = engine_throughput(store, HeuristicsScorer, workers, info["mb"], info["docs"],
                                    end_to_end=(workers == CORES))
        _MEMO[key] = {**res, "ray_start_s": round(ray_s, 3), "store": info}
    return _MEMO[key]


def run(quick: bool) -> list[dict[str, Any]]:
    subset_docs = 500 if quick else 2000
    sub = corpus_table(quick).slice(0, subset_docs)
    sub_store, sub_info = build_store(f"heur-subset-{subset_docs}", sub, shard_rows_for(sub.num_rows, CORES * 2))

    dt: dict[str, Any] = {}
    py, why = datatrove_python()
    if py is not None:
        try:
            for kind in ("heuristics", "heuristics-default"):
                log(f"heuristics: datatrove {kind} on {subset_docs} docs, {CORES} task(s)")
                res = run_datatrove_job(py, {
                    "kind": kind, "input_dir": str(sub_store / "shards" / "bench"),
                    "probe_dir": str(sub_store / "shards" / "warmup"), "work_dir": str(TMP / f"dt-{kind}"),
                    "tasks": CORES, "workers": CORES, "repeats": 1, "warm_docs": 20})
                best = max(res["runs"], key=lambda r: r["steady_mb_s"] or 0)
                dt[kind] = {**res, "mb_s": best["steady_mb_s"], "docs": best["docs"], "wall_s": best["wall_s"]}
            if dt["heuristics"]["docs"] != sub.num_rows:
                raise RuntimeError(f"datatrove kept {dt['heuristics']['docs']} of {sub.num_rows} docs")
            dt["version"] = datatrove_version(py)
        except Exception as exc:  # noqa: BLE001 - a broken peer must not stop the suite
            why, dt = f"{type(exc).__name__}: {exc}"[:240], {}

    log(f"heuristics: curate run_scorer, {CORES} worker(s)")
    ours = curate_throughput(quick, CORES)
    # also curate on datatrove's subset, as a check that the subset is not easier than the whole
    from scorers.heuristics import HeuristicsScorer

    with ray_session():
        ours_sub = engine_throughput(sub_store, HeuristicsScorer, CORES, sub_info["mb"], sub_info["docs"], repeats=3)

    info = ours["store"]
    compared = "HeuristicsScorer (engine) vs datatrove Gopher rep.+quality"
    sizes = f"ours {info['docs']} docs/{info['mb']} MB; datatrove {sub_info['docs']} docs/{sub_info['mb']} MB"
    details = {"ours": ours, "ours_on_subset": ours_sub, "datatrove": dt, "subset": sub_info,
               "subset_text_mb": round(text_mb(sub), 2)}
    if not dt:
        return [unavailable("heuristics", compared, why or "not run", docs=info["docs"], mb=info["mb"], cores=CORES,
                            ours=ours["mb_s"], unit="MB/s", goal=GOAL, details=details)]
    return [row("heuristics", compared, docs=info["docs"], mb=info["mb"], cores=CORES, ours=ours["mb_s"],
                baseline=dt["heuristics"]["mb_s"], unit="MB/s", goal=GOAL,
                note=f"datatrove on a {sub_info['docs']}-doc random subset ({sizes}); every check on every doc "
                     f"(datatrove defaults, early exit: {dt['heuristics-default']['mb_s']:.2f} MB/s; "
                     f"curate on the subset: {ours_sub['mb_s']:.1f} MB/s)",
                details={**details, "sizes": sizes})]
