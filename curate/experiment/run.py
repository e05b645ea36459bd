"""``run_experiment``: prepare the store, draw every method's data, train one LM per method, compare, report.

Order of work, so mistakes surface before anything slow: names and scale are
checked; the store and missing features are made; every static draw is computed
(a method whose selection cannot cover the budget is refused here); then the runs
train one at a time, random first. A run's result is kept in ``<out>/runs/`` with a
fingerprint of everything it depends on, so re-running skips finished runs
(``force`` retrains them).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from curate.errors import ConfigError
from curate.experiment.features import ensure_features, prepare_store
from curate.experiment.methods import METHODS, draw, parse_methods, pool_where, token_shares, two_phase_plan
from curate.experiment.multiplier import compare
from curate.experiment.report import write_report
from curate.experiment.scales import Scale, get_scale
from curate.store import Store


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _draw_hash(table: Any) -> str:
    return hashlib.sha256("\0".join(table.column("doc_id").to_pylist()).encode()).hexdigest()[:16]


def plan_runs(st: Store, con: Any, names: list[str], scale: Scale, pool: str, seed: int) -> list[dict[str, Any]]:
    """Every run with its draw (None for MATES, which chooses while training), random seeds first."""
    where = pool_where(pool)
    runs = [{"method": "random", "seed": seed + i, "tokens": scale.random_tokens,
             "draw": draw(con, METHODS["random"].sql(where), scale.random_tokens, seed=seed + i, what="random")}
            for i in range(scale.random_seeds)]
    for name in names:
        m = METHODS[name]
        if name == "random":
            continue
        run: dict[str, Any] = {"method": name, "seed": seed, "tokens": scale.budget, "draw": None}
        if m.kind == "sql":
            run["draw"] = draw(con, m.sql(where), scale.budget, seed=seed, what=f"method {name!r}")
        elif m.kind == "mixture":
            run["draw"], run["spec"] = two_phase_plan(st, con, pool, scale.budget, seed=seed,
                                                      anneal_fraction=scale.anneal_fraction)
        runs.append(run)
    return runs


def _draw_info(table: Any, stages: list[dict[str, Any]]) -> dict[str, Any]:
    """What a run trained on: documents, tokens, domain shares (and phase shares); MATES: over its stages."""
    if table is None:
        total = sum(s["tokens"] for s in stages) or 1
        doms = sorted({d for s in stages for d in s["domains"]})
        return {"docs": sum(s["docs"] for s in stages), "tokens": total,
                "domains": {d: round(sum(s["tokens"] * s["domains"].get(d, 0.0) for s in stages) / total, 4)
                            for d in doms}}
    n = table.column("n_tokens").to_numpy()
    info = {"docs": table.num_rows, "tokens": int(n.sum()), "largest_doc": int(n.max()) if len(n) else 0,
            "domains": token_shares(table)}
    if "phase" in table.column_names:
        info["phases"] = token_shares(table, "phase")
    return info


def _train_one(st: Store, con: Any, run: dict[str, Any], scale: Scale, pool: str, log: Callable[[str], None],
               progress: bool | None) -> dict[str, Any]:
    from curate.experiment.staged import mates_batches
    from curate.experiment.training import draw_batches, train_run

    method, seed = run["method"], run["seed"]
    name = f"exp-{scale.name}-{method}-s{seed}"
    stages: list[dict[str, Any]] = []
    if run["draw"] is None:
        batches, stages = mates_batches(st, con, scale, pool=pool, tokens=run["tokens"], seed=seed,
                                        run=f"exp-{scale.name}", log=log)
        sql = f"MATES stages over corpus {pool!r}"
    else:
        batches = draw_batches(con, run["draw"], scale, seed)
        sql = f"{method} draw over corpus {pool!r}"
    t0 = time.perf_counter()
    card = train_run(st, name, scale, tokens=run["tokens"], batches=batches, seed=seed, sql=sql, progress=progress)
    out = {"method": method, "seed": seed, "model": name, "tokens": card.tokens_seen, "curve": card.curve,
           "loss": card.heldout_loss, "bits_per_byte": card.heldout_bits_per_byte, "params": card.params,
           "seconds": round(time.perf_counter() - t0, 1), "tokens_per_second": card.tokens_per_second,
           "heldout_docs": card.heldout_docs, "heldout_tokens": card.heldout_tokens,
           "draw": _draw_info(run["draw"], stages)}
    if stages:
        out["stages"] = stages
    if "spec" in run:
        out["mixture_spec"] = run["spec"]
    return out


def run_experiment(store: str | Path | Store, out: str | Path, *, scale: str = "default", methods: Any = None,
                   seed: int = 0, pool: str = "demo", budget: int | None = None, workers: int | None = 0,
                   force: bool = False, progress: bool | None = False, log: Callable[[str], None] = print,
                   command: str = "") -> dict[str, Any]:
    """Run the selection experiment; returns the result (also written to ``out``: JSON, Markdown, PNG).

    - ``scale``: ``tiny`` / ``default`` / ``large`` (:data:`curate.experiment.scales.SCALES`); ``budget``
      overrides its tokens per method.
    - ``methods``: names or a comma-separated string (default: all of :data:`METHODS`; random is always run).
    - ``seed``: initialisation and draw order of every method; random also runs seed+1, ...
    - ``pool``: the corpus methods select from; the target is corpus ``heldout``.
    - ``workers``: scoring workers when features are made (0: in this process; None: Ray, one per CPU).
    """
    import torch

    from curate.query import connect

    names = parse_methods(methods)
    sc = get_scale(scale, budget=budget)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file: give a directory")
    t_start, cpu_start, load_start = time.perf_counter(), time.process_time(), _loadavg()
    threads_before = torch.get_num_threads()
    torch.set_num_threads(sc.threads)
    try:
        st = prepare_store(store, sc, pool, log=log)
        features = ensure_features(st, names, sc, pool, workers=workers, progress=progress, log=log)
        con = connect(st)
        runs = plan_runs(st, con, names, sc, pool, seed)
        t_runs = time.perf_counter()
        results = []
        corpus_sig = con.sql("SELECT corpus, count(*) FROM docs GROUP BY 1 ORDER BY 1").fetchall()
        for run in runs:
            key = f"{run['method']}-s{run['seed']}"
            fp = _fingerprint(sc.to_dict(), run["method"], run["seed"], pool, corpus_sig,
                              _draw_hash(run["draw"]) if run["draw"] is not None else None)
            saved = out / "runs" / f"{key}.json"
            if not force and saved.is_file():
                old = json.loads(saved.read_text())
                if old.get("fingerprint") == fp:
                    log(f"{key}: finished earlier (same data and settings), reused")
                    results.append(old)
                    continue
            log(f"{key}: training on {run['tokens']:,} tokens")
            res = _train_one(st, con, run, sc, pool, log, progress)
            res["fingerprint"] = fp
            saved.parent.mkdir(parents=True, exist_ok=True)
            saved.write_text(json.dumps(res, indent=2, default=str))
            log(f"{key}: held-out {res['bits_per_byte']:.4f} bits/byte at {res['tokens']:,} tokens, "
                f"{res['seconds']:.0f} s")
            results.append(res)
        setup = _setup(con, pool, results)
        con.close()
    finally:
        torch.set_num_threads(threads_before)
    t_end = time.perf_counter()
    result = {
        "config": {"scale": sc.to_dict(), "methods": names, "seed": seed, "pool": pool, "store": str(st.uri),
                   "workers": workers},
        "command": command, "random_tokens": sc.random_tokens, "setup": setup, "features": features,
        "runs": results, "comparison": compare(results, sc.budget),
        # CPU seconds of this process (every thread): on a shared machine, closer to what an idle one takes
        "timing": {"total": round(t_end - t_start, 1), "prepare": round(t_runs - t_start, 1),
                   "runs": round(t_end - t_runs, 1), "cpu": round(time.process_time() - cpu_start, 1)},
        "machine": {"cpu_count": os.cpu_count(), "loadavg_start": load_start, "loadavg": _loadavg()},
    }
    result["files"] = write_report(out, result)
    return result


def _setup(con: Any, pool: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    docs, tokens = con.sql(f"SELECT count(*), sum(n_bytes + 1) FROM docs WHERE {pool_where(pool)}").fetchall()[0]
    first = results[0] if results else {}
    return {"pool_docs": int(docs), "pool_tokens": int(tokens or 0), "eval_docs": first.get("heldout_docs", 0),
            "eval_tokens": first.get("heldout_tokens", 0), "params": first.get("params", 0)}


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
