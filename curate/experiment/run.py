"""``run_experiment``: prepare the store and targets, train every (method, target, seed) run, compare, report.

Order of work, so mistakes surface before anything slow: names, targets and scale are
checked; the store and missing features are made; pool documents that copy a target
are found and excluded; each target's PreSelect and closest-to-target scores are made;
then the runs train, ``jobs`` at a time in their own processes (one torch thread each),
longest first. A run that does not read the target (random, the perplexity band,
EL2N) trains once and is evaluated on every target. A run's result is kept in
``<out>/runs/`` with a fingerprint of everything it depends on, so re-running skips
finished runs (``force`` retrains them).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from curate.errors import ConfigError
from curate.experiment.compare import compare_all
from curate.experiment.methods import (
    METHODS,
    parse_methods,
    pool_domain_shares,
    pool_where,
)
from curate.experiment.prepare import (
    closest_scores,
    corpus_signature,
    fingerprint,
    overlap_exclusion,
    preselect_scores,
    slug,
)
from curate.experiment.report import publish, write_report
from curate.experiment.scales import Scale, get_scale
from curate.experiment.setup import ensure_features, prepare_store
from curate.experiment.targets import Target, parse_targets, target_names
from curate.store import Store


def plan_runs(names: list[str], targets: list[Target], scale: Scale, seed: int) -> list[dict[str, Any]]:
    """One spec per (method, target for target-aware methods, seed); random first, its long run included."""
    specs = []
    for name in names:
        m = METHODS[name]
        for target in (targets if m.per_target else [None]):
            if m.needs_domains and (target is None or not target.domains):
                continue  # the oracle of an in-distribution target is random itself
            points = scale.random_points if name == "random" else scale.method_points
            for s in range(seed, seed + scale.seeds_of(name)):
                key = f"{name}{'@' + target.name if target else ''}-s{s}"
                specs.append({"key": key, "method": name, "target": target.to_dict() if target else None, "seed": s,
                              "ends": scale.points(points)})
    return specs


def _fingerprint(spec: dict[str, Any], scale: Scale, shared: dict[str, Any], out: Path) -> str:
    """What a run's result depends on: the scale, its method, target, seed and points, the store's documents,
    the overlap exclusion, and the target's score files the method reads."""
    scores = [json.loads((out / "scores" / f"{kind}-{slug(spec['target']['name'])}.json").read_text())["fingerprint"]
              for kind in METHODS[spec["method"]].scores]
    # the PreSelect family and the target LMs reach a run only through its score files (fingerprinted above):
    # a new family retrains the runs that read PreSelect scores, not every run
    settings = scale.to_dict()
    settings["features"] = {k: v for k, v in settings["features"].items() if k not in ("family", "target_lm")}
    settings.pop("random_seeds")  # how many seeds random has does not change any one run
    if not METHODS[spec["method"]].keeps_share:
        settings.pop("keep_share")  # a share it does not read
    return fingerprint(settings, spec["method"], spec["target"], spec["seed"], spec["ends"], shared, scores)


def run_experiment(store: str | Path | Store, out: str | Path, *, scale: str = "default", methods: Any = None,
                   targets: Any = None, seed: int = 0, seeds: int | None = None, pool: str = "demo",
                   budget: int | None = None, keep_share: float | None = None, workers: int | None = 0,
                   jobs: int | None = None, force: bool = False, progress: bool | None = False,
                   log: Callable[[str], None] = print, command: str = "") -> dict[str, Any]:
    """Run the selection experiment; returns the result (also written to ``out``: JSON, Markdown, PNGs).

    - ``scale``: ``tiny`` / ``default`` / ``large`` (:data:`curate.experiment.scales.SCALES`); ``budget``
      overrides its tokens per method, ``seeds`` its seeds per method, ``keep_share`` the share of the pool's
      characters that preselect, preselect-strat and closest keep.
    - ``methods``: names or a comma-separated string (default: all of :data:`METHODS`; random always runs).
    - ``targets``: built-in names (``mixed``, ``math-code``, ``prose``), ``corpus:NAME`` or ``sql:QUERY``
      (default: the three built-in ones).
    - ``seed``: the first seed; runs use seed, seed+1, ... (data windows and initialisation).
    - ``pool``: the corpus methods select from.
    - ``workers``: scoring workers when features are made (0: in this process; None: Ray, one per CPU).
    - ``jobs``: runs trained at once (default: the scale's, at most the CPUs).
    """
    from curate.query import connect

    names = parse_methods(methods)
    target_names(targets)  # a name that cannot be a target is refused before the store is touched
    sc = get_scale(scale, budget=budget, seeds=seeds, keep_share=keep_share)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file: give a directory")
    jobs = max(1, min(jobs or sc.workers, os.cpu_count() or 1))
    t_start, cpu_start, load_start = time.perf_counter(), time.process_time(), _loadavg()
    st = prepare_store(store, sc, pool, log=log)
    con = connect(st)
    tgts = parse_targets(con, targets, pool)
    con.close()
    features = ensure_features(st, names, sc, pool, workers=workers, progress=progress, log=log)
    con = connect(st)
    out.mkdir(parents=True, exist_ok=True)
    overlap = overlap_exclusion(con, pool, tgts, out, threshold=sc.overlap_threshold, log=log)
    exclude = overlap["exclude_sql"]
    prepared: dict[str, dict[str, Any]] = {t.name: {} for t in tgts}
    recipe = sc.features
    for t in tgts:
        if {"preselect", "preselect-strat"} & set(names):
            prepared[t.name]["preselect"] = preselect_scores(st, con, pool, t, recipe.family, out, exclude_sql=exclude,
                                                             threads=sc.threads, log=log)
        if "closest" in names:
            prepared[t.name]["closest"] = closest_scores(st, con, pool, t, recipe.target_lm, out,
                                                         max_tokens=recipe.perplexity_max_tokens,
                                                         threads=sc.threads, log=log)
    shares = pool_domain_shares(con, pool, exclude)
    shared = {"corpora": corpus_signature(con), "overlap": overlap["fingerprint"], "version": "windows-wsd-2"}
    setup = _setup(con, pool, exclude, tgts, sc)
    con.close()
    specs = plan_runs(names, tgts, sc, seed)
    context = {"store": st.uri, "out": str(out.resolve()), "pool": pool, "exclude_sql": exclude,
               "scale": sc.to_dict(), "targets": [t.to_dict() for t in tgts], "pool_shares": shares}
    t_runs = time.perf_counter()
    results = _execute(specs, sc, shared, context, out, jobs=jobs, force=force, log=log)
    t_end = time.perf_counter()
    result = {
        "config": {"scale": sc.to_dict(), "methods": names, "targets": [t.to_dict() for t in tgts], "seed": seed,
                   "pool": pool, "store": str(st.uri), "workers": workers, "jobs": jobs},
        "command": command, "random_tokens": sc.random_tokens, "setup": setup, "features": features,
        "overlap": {k: v for k, v in overlap.items() if k not in ("exclude_sql", "fingerprint")},
        "prepared": prepared,
        "runs": results, "comparison": compare_all(results, tgts, sc.budget_steps * sc.step_tokens),
        # CPU seconds of this process only; the runs' processes report their own seconds
        "timing": {"total": round(t_end - t_start, 1), "prepare": round(t_runs - t_start, 1),
                   "runs": round(t_end - t_runs, 1), "cpu_main": round(time.process_time() - cpu_start, 1),
                   "run_seconds": round(sum(r["seconds"] for r in results), 1)},
        "machine": {"cpu_count": os.cpu_count(), "loadavg_start": load_start, "loadavg": _loadavg()},
    }
    result["files"] = write_report(out, result)
    result["files"]["store"] = publish(st, out, sc.name)  # for `curate browse` / `curate report`
    return result


def _execute(specs: list[dict[str, Any]], sc: Scale, shared: dict[str, Any], context: dict[str, Any], out: Path, *,
             jobs: int, force: bool, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Train every run not already finished with the same fingerprint; ``jobs`` processes at a time."""
    from curate.experiment.train_run import train_one

    done: dict[str, dict[str, Any]] = {}
    todo = []
    for spec in specs:
        fp = _fingerprint(spec, sc, shared, out)
        saved = out / "runs" / f"{spec['key']}.json"
        if not force and saved.is_file():
            old = json.loads(saved.read_text())
            if old.get("fingerprint") == fp:
                done[spec["key"]] = old
                continue
        todo.append({**spec, "fingerprint": fp})
    if done:
        log(f"{len(done)} run(s) finished earlier with the same data and settings: reused")
    # longest first: random's long curve and MATES' stages, so the last minutes are not one long run alone
    todo.sort(key=lambda s: (-max(s["ends"]) * (3 if s["method"] == "mates" else 1), s["key"]))
    total = len(todo)

    def finish(res: dict[str, Any]) -> None:
        saved = out / "runs" / f"{res['key']}.json"
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(res, indent=2, default=str))
        done[res["key"]] = res
        final = res["points"][-1]["bits_per_byte"]
        bits = ", ".join(f"{k.split(':', 1)[1]} {v:.4f}" for k, v in final.items() if k.startswith("target:"))
        log(f"[{len(done) - (len(specs) - total)}/{total}] {res['key']}: {bits} bits/byte at "
            f"{res['points'][-1]['tokens']:,} tokens, {res['seconds']:.0f} s")

    if jobs == 1 or total <= 1:
        for spec in todo:
            finish(train_one(spec, context, log))
    else:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"), initializer=_exit_with_parent,
                                 initargs=(os.getpid(),)) as pool:
            pending = {pool.submit(train_one, spec, context, None): spec for spec in todo}
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    pending.pop(fut)
                    finish(fut.result())
    return [done[s["key"]] for s in specs]


def _exit_with_parent(parent: int, every: float = 1.0) -> None:
    """In a run process: exit once ``parent`` (the experiment) is gone. A pool's idle workers wait on a pipe
    their siblings also hold open, so a killed experiment (SIGKILL, a scheduler's kill) would otherwise
    leave them running, and their torch threads spinning, until the machine restarts."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _setup(con: Any, pool: str, exclude: str, targets: list[Target], sc: Scale) -> dict[str, Any]:
    docs, tokens = con.sql(f"SELECT count(*), sum(n_bytes + 1) FROM docs WHERE {pool_where(pool)} "
                           f"AND doc_id NOT IN ({exclude})").fetchall()[0]
    out = {"pool_docs": int(docs), "pool_tokens": int(tokens or 0), "targets": {}}
    for t in targets:
        n_eval, b_eval = con.sql(f"SELECT count(*), sum(least(n_bytes, {sc.eval_max_bytes})) FROM docs "
                                 f"WHERE doc_id IN ({t.eval_sql})").fetchall()[0]
        n_ref = con.sql(f"SELECT count(*) FROM ({t.reference_sql}) AS r").fetchall()[0][0]
        out["targets"][t.name] = {"eval_docs": int(n_eval), "eval_bytes": int(b_eval or 0), "reference_docs": int(n_ref)}
    return out


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None

