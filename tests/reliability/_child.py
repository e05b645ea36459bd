"""Entry points for the child processes of the reliability tests (``python -m tests.reliability._child``).

Each prints one JSON line on success; errors a user would see go to stderr with exit code 2.
"""

from __future__ import annotations

import json
import os
import sys
import time


def score(store: str, delay: str, fault: str = "", after: str = "0") -> None:
    """Score ``store`` inline with the slowed heuristics scorer, optionally breaking the store mid-run.

    ``fault=chmod``: 0.3 s after the ``after``-th shard is done (while the next one is being
    written), the feature directory becomes read-only. ``fault=full``: from then on no file may
    grow past 1 KiB (RLIMIT_FSIZE), as on a full disk.
    """
    import resource
    import signal
    import threading

    from curate.errors import CurateError
    from curate.execute import run_scorer
    from curate.store import Store
    from tests.reliability.slow_scorer import SlowHeuristics

    done = 0

    def break_store() -> None:
        if fault == "chmod":
            os.chmod(Store.open(store).path("features", "heuristics"), 0o555)
        elif fault == "full":
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes then fail with EFBIG instead of killing us
            resource.setrlimit(resource.RLIMIT_FSIZE, (1024, resource.RLIM_INFINITY))

    def on_result(_res) -> None:
        nonlocal done
        done += 1
        if fault and done == int(after):
            if fault == "chmod":
                threading.Timer(0.3, break_store).start()
            else:
                break_store()

    try:
        r = run_scorer(store, SlowHeuristics(float(delay)), workers=0, on_result=on_result)
    except CurateError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
    print(json.dumps({"pid": os.getpid(), "done": r.done, "skipped": r.skipped, "rows": r.rows}), flush=True)


def score_units(store: str, log: str, unit_rows: str) -> None:
    """Score ``store`` inline in units of ``unit_rows`` with the heuristics scorer that logs each doc_id it scores
    (``CURATE_FAULT`` kills us where a test says)."""
    from curate.execute import run_scorer
    from tests.reliability.unit_scorer import LoggedHeuristics

    r = run_scorer(store, LoggedHeuristics(log), workers=0, unit_rows=int(unit_rows), progress=False)
    print(json.dumps({"pid": os.getpid(), "done": r.done, "skipped": r.skipped, "rows": r.rows}), flush=True)


def hold(store: str, name: str, seconds: str) -> None:
    """Hold the store lock ``name``, say so on stdout, then sleep (the test SIGKILLs us)."""
    from curate.locks import store_lock
    from curate.store import Store

    with store_lock(Store.open(store), name, f"hold {name} for a test"):
        print("held", flush=True)
        time.sleep(float(seconds))


def gated_cli(*args: str) -> None:
    """The real ``curate`` command line, with ``heuristics`` held at a gate (``--set heuristics.gate=DIR``)."""
    from curate.cli import app
    from scorers.registry import builtin

    builtin()["heuristics"] = "tests.reliability.slow_scorer:GatedHeuristics"
    app(list(args), prog_name="curate")


if __name__ == "__main__":
    {"score": score, "score_units": score_units, "hold": hold, "gated_cli": gated_cli}[sys.argv[1]](*sys.argv[2:])
