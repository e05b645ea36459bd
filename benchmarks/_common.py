"""Shared pieces of the benchmark suite: data, timing, Ray sessions, RSS sampling, the datatrove venv.

Everything is written under ``bench-out/`` (relative to the working directory,
normally the repo root): ``bench-out/cache`` keeps what is expensive to build
(the shuffled corpus, trained model, ingested stores, the datatrove venv) between runs,
``bench-out/tmp`` is scratch that each benchmark clears.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

OUT = Path("bench-out")
CACHE = OUT / "cache"
TMP = OUT / "tmp"
VENVS = OUT / "venvs"
REPO = Path(__file__).resolve().parent.parent

#: cores the comparisons use: curate workers, datatrove tasks/workers, raw loop processes
CORES = max(1, min(2, os.cpu_count() or 1))
QUICK_MB = 10.0  # text MB of the --quick corpus
WARMUP_SHARDS, WARMUP_ROWS = 2, 16  # the "warmup" corpus every benchmark store carries
SEED = 0


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def rel(p: Path | str) -> str:
    """A path as shown in results: relative to the working directory when it is inside it."""
    try:
        return str(Path(p).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return Path(p).name


def fresh_dir(name: str) -> Path:
    d = TMP / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


# --------------------------------------------------------------------------- machine facts

def _loadavg() -> list[float] | None:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return None


LOADAVG_AT_START = _loadavg()


def machine_facts() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gb = None
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    versions = {}
    for mod in ("pyarrow", "ray", "numpy", "fasttext"):
        with contextlib.suppress(Exception):
            m = __import__(mod)
            versions[mod] = getattr(m, "__version__", "?")
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "mem_gb": mem_gb,
        "cores_used": CORES,
        "loadavg_start": LOADAVG_AT_START,
        "loadavg_end": _loadavg(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


# --------------------------------------------------------------------------- data

def text_mb(table: pa.Table) -> float:
    return pc.sum(pc.binary_length(table.column("text").cast(pa.large_binary()))).as_py() / 1e6


def shuffled_corpus() -> Path:
    """The embedded corpus in a fixed random order (so shards of any size are balanced in content)."""
    from curate.embedded import embedded_corpus

    src = embedded_corpus()["train"]
    out = CACHE / "corpus-shuffled.parquet"
    stamp = f"{src.stat().st_size}-{src.stat().st_mtime_ns}"
    stamp_file = out.with_suffix(".stamp")
    if out.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
        return out
    import numpy as np

    CACHE.mkdir(parents=True, exist_ok=True)
    t = pq.read_table(src)
    t = t.take(np.random.default_rng(SEED).permutation(t.num_rows))
    pq.write_table(t, out, compression="zstd", row_group_size=2048)
    stamp_file.write_text(stamp)
    return out


def corpus_table(quick: bool, max_mb: float | None = None) -> pa.Table:
    """The shuffled corpus, or its prefix of about ``max_mb`` text MB (``QUICK_MB`` with --quick)."""
    t = pq.read_table(shuffled_corpus())
    cap = max_mb if max_mb is not None else (QUICK_MB if quick else None)
    if cap is None:
        return t
    lens = pc.binary_length(t.column("text").cast(pa.large_binary())).to_numpy()
    import numpy as np

    n = int(np.searchsorted(np.cumsum(lens), cap * 1e6)) + 1
    return t.slice(0, min(n, t.num_rows))


def write_jsonl(table: pa.Table, path: Path) -> Path:
    """One JSON object per line (what a user's crawl dump looks like), written once and cached."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    with open(tmp, "w", encoding="utf-8") as f:
        for batch in table.to_batches(4096):
            for row in batch.to_pylist():
                f.write(json.dumps(row, ensure_ascii=False))
                f.write("\n")
    tmp.rename(path)
    return path


def zstd_copy(src: Path, dst: Path, level: int = 3) -> Path:
    if dst.exists():
        return dst
    import zstandard

    tmp = dst.with_suffix(".part")
    with open(src, "rb") as fi, open(tmp, "wb") as fo:
        zstandard.ZstdCompressor(level=level, threads=-1).copy_stream(fi, fo)
    tmp.rename(dst)
    return dst


def repeated(table: pa.Table, times: int) -> pa.Table:
    """``times`` copies of the documents with distinct ids (``<id>#<k>``), so each copy is a new doc."""
    parts = []
    for k in range(times):
        ids = pc.binary_join_element_wise(table.column("id"), pa.scalar(f"#{k}"), "")
        parts.append(table.set_column(table.schema.get_field_index("id"), "id", ids))
    return pa.concat_tables(parts)


def build_store(name: str, table: pa.Table, shard_rows: int) -> tuple[Path, dict[str, Any]]:
    """Ingest ``table`` as corpus ``bench`` into a cached store (re-ingesting the same input is a no-op)."""
    import curate
    from curate.embedded import CORPUS_FIELDS

    root = CACHE / "stores" / name
    src = root.parent / f"{name}.input.parquet"
    sig = f"{table.num_rows}-{text_mb(table):.6f}-{shard_rows}-w{WARMUP_SHARDS}x{WARMUP_ROWS}"
    sig_file = root.parent / f"{name}.sig"
    if not (sig_file.exists() and sig_file.read_text() == sig and root.exists()):
        shutil.rmtree(root, ignore_errors=True)
        root.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, src, compression="zstd", row_group_size=4096)
        curate.ingest([src], root, "bench", fields=CORPUS_FIELDS, shard_rows=shard_rows, progress=False)
        # a tiny second corpus: one small shard per worker, to warm actors and measure fixed costs
        warm = root.parent / f"{name}.warmup.parquet"
        pq.write_table(table.slice(0, WARMUP_SHARDS * WARMUP_ROWS), warm, compression="zstd")
        curate.ingest([warm], root, "warmup", fields=CORPUS_FIELDS, shard_rows=WARMUP_ROWS, progress=False)
        sig_file.write_text(sig)
    shards = sorted((root / "shards" / "bench").glob("*.parquet"))
    info = {"docs": table.num_rows, "mb": round(text_mb(table), 2), "shards": len(shards), "shard_rows": shard_rows}
    return root, info


def shard_rows_for(n_docs: int, n_shards: int) -> int:
    return max(1, -(-n_docs // n_shards))


def warm_page_cache(paths: list[Path]) -> None:
    for p in paths:
        if p.is_dir():
            warm_page_cache(sorted(p.rglob("*")))
        elif p.is_file():
            with open(p, "rb") as f:
                while f.read(1 << 24):
                    pass


# --------------------------------------------------------------------------- timing

def best_of(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> tuple[float, Any]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times; the fastest wall time and its result."""
    for _ in range(warmup):
        fn()
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = fn()
        dt = time.perf_counter() - t0
        if dt < best:
            best, out = dt, res
    return best, out


# --------------------------------------------------------------------------- Ray + the engine

_RAY_START: list[float] = []


@contextlib.contextmanager
def ray_session(cores: int = CORES) -> Iterator[float]:
    """Start local Ray sized to ``cores`` (timed: Ray start-up), shut it down afterwards."""
    os.environ.pop("RAY_ADDRESS", None)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    import ray

    from curate.execute import init_ray

    if ray.is_initialized():
        ray.shutdown()
    t0 = time.perf_counter()
    init_ray(num_cpus=cores)
    start = time.perf_counter() - t0
    _RAY_START.append(start)
    try:
        yield start
    finally:
        ray.shutdown()


def ray_start_seconds() -> list[float]:
    return list(_RAY_START)


def _clear_features(store: Path, table: str) -> None:
    shutil.rmtree(store / "features" / table, ignore_errors=True)


def run_engine(store: Path, scorer: Any, workers: int, corpora: tuple[str, ...] = ("bench",)) -> tuple[float, Any]:
    """One end-to-end ``run_scorer`` (actor start-up included) from scratch; (wall seconds, report)."""
    from curate.execute import run_scorer

    _clear_features(store, scorer.name)
    t0 = time.perf_counter()
    report = run_scorer(str(store), scorer, corpora=list(corpora), workers=workers, progress=False)
    wall = time.perf_counter() - t0
    if not report.ok:
        raise RuntimeError(f"run_scorer failed: {report.failed[:2]}")
    return wall, report


def _dispatch(ray: Any, actors: list[Any], items: list[Any]) -> tuple[int, list[float]]:
    """The engine's scheduling (``curate.execute._run_on_ray``): one shard in flight per actor."""
    from collections import deque

    idle, queue, pending = list(actors), deque(items), {}
    rows, secs = 0, []
    while queue or pending:
        while idle and queue:
            actor = idle.pop()
            pending[actor.score.remote(queue.popleft())] = actor
        ready, _ = ray.wait(list(pending), num_returns=1)
        res = ray.get(ready[0])
        if res.status != "done":
            raise RuntimeError(f"shard failed: {res.error}")
        rows += res.rows
        secs.append(res.seconds)
        idle.append(pending.pop(ready[0]))
    return rows, secs


def engine_throughput(store: Path, make_scorer: Callable[[], Any], workers: int, mb: float, docs: int,
                      repeats: int = 2, end_to_end: bool = False) -> dict[str, Any]:
    """Steady-state throughput of curate's engine with ``workers`` Ray actors (Ray already up).

    The engine's own actor class (``curate.execute``) is started and set up (model loaded)
    first — that is the start-up, timed apart — then warmed on the store's tiny ``warmup``
    corpus, then handed every shard of ``bench`` with the engine's one-in-flight-per-actor
    scheduling, ``repeats`` times; the fastest pass counts. ``end_to_end`` also times one
    cold ``run_scorer`` call (start-up included) for reference.
    """
    import ray

    from curate.execute import _actor_class
    from curate.shards import plan
    from curate.scoring import scorer_fingerprint
    from curate.store import Store

    st = Store.open(str(store))
    scorer = make_scorer()
    fp = scorer_fingerprint(scorer)
    _clear_features(store, scorer.name)
    items, _ = plan(st, scorer.name, fp, ["bench"])
    warm_items, _ = plan(st, scorer.name, fp, ["warmup"])
    cpus = int(ray.cluster_resources().get("CPU", 1))
    threads = max(1, cpus // workers)
    Actor = _actor_class(ray)
    t0 = time.perf_counter()
    actors = [Actor.options(num_cpus=1).remote(st.uri, scorer, threads) for _ in range(workers)]
    ray.get([a.pid.remote() for a in actors])
    startup = time.perf_counter() - t0
    try:
        ray.get([a.score.remote(warm_items[i % len(warm_items)]) for i, a in enumerate(actors)])
        warm_page_cache([store / "shards" / "bench"])
        passes = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            rows, secs = _dispatch(ray, actors, items)
            passes.append((time.perf_counter() - t0, secs))
            if rows != docs:
                raise RuntimeError(f"scored {rows} rows of {docs}")
    finally:
        for a in actors:
            ray.kill(a)
    steady, secs = min(passes, key=lambda p: p[0])
    out = {
        "workers": workers,
        "actor_startup_s": round(startup, 3),
        "steady_s": round(steady, 3),
        "passes_s": [round(p[0], 3) for p in passes],
        "mb_s": mb / steady,
        "docs_s": docs / steady,
        "in_actor_mb_s_per_worker": round(mb / sum(secs), 2) if secs else None,
    }
    if end_to_end:
        wall, _ = run_engine(store, make_scorer(), workers)
        out.update({"run_scorer_wall_s": round(wall, 3), "run_scorer_mb_s": round(mb / wall, 2)})
    return out


# --------------------------------------------------------------------------- memory

def _rss_and_ppid(pid: int) -> tuple[int, int, str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        rpar = stat.rindex(b")")
        fields = stat[rpar + 2:].split()
        ppid = int(fields[1])
        rss_pages = int(fields[21])
        comm = stat[stat.index(b"(") + 1:rpar].decode(errors="replace")
        return rss_pages * os.sysconf("SC_PAGE_SIZE"), ppid, comm
    except (OSError, ValueError, IndexError):
        return None


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class RssSampler:
    """Samples RSS of this process plus its descendants every ``interval`` seconds (reads /proc).

    ``peak_workers``: driver + Ray worker processes (``ray::`` / ``default_worker``);
    ``peak_tree``: every descendant (raylet, GCS, agents too).
    """

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak_workers = 0
        self.peak_tree = 0
        self.peak_driver = 0
        self.max_workers = 0  # most Ray worker processes alive at once
        self.peak_one_worker = 0  # largest single worker RSS
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._kinds: dict[int, bool] = {}

    def _is_worker(self, pid: int, comm: str) -> bool:
        if pid not in self._kinds:
            cmd = _cmdline(pid)
            self._kinds[pid] = comm.startswith("ray::") or "default_worker" in cmd or cmd.startswith("ray::")
        return self._kinds[pid]

    def sample(self) -> None:
        me = os.getpid()
        procs = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                info = _rss_and_ppid(int(name))
                if info:
                    procs[int(name)] = info
        children: dict[int, list[int]] = {}
        for pid, (_, ppid, _) in procs.items():
            children.setdefault(ppid, []).append(pid)
        stack, tree = [me], []
        while stack:
            p = stack.pop()
            tree.append(p)
            stack.extend(children.get(p, []))
        driver = procs.get(me, (0, 0, ""))[0]
        ray_workers = [procs[p][0] for p in tree if p != me and self._is_worker(p, procs[p][2])]
        workers = driver + sum(ray_workers)
        self.max_workers = max(self.max_workers, len(ray_workers))
        self.peak_one_worker = max([self.peak_one_worker, *ray_workers])
        total = sum(procs[p][0] for p in tree)
        self.peak_driver = max(self.peak_driver, driver)
        self.peak_workers = max(self.peak_workers, workers)
        self.peak_tree = max(self.peak_tree, total)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


# --------------------------------------------------------------------------- the datatrove venv

DATATROVE_REQS = ["datatrove[processing]", "spacy", "pyarrow", "orjson"]


def datatrove_python() -> tuple[Path | None, str]:
    """The datatrove venv's interpreter (created and cached on first use), or (None, why not)."""
    venv = VENVS / "datatrove"
    py = venv / "bin" / "python"
    stamp = venv / ".bench-ready"
    want = " ".join(DATATROVE_REQS)
    if py.exists() and stamp.exists() and stamp.read_text() == want:
        return py, ""
    log(f"creating the datatrove virtualenv in {rel(venv)} (cached for later runs)")
    try:
        shutil.rmtree(venv, ignore_errors=True)
        VENVS.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        res = subprocess.run([str(py), "-m", "pip", "install", "-q", *DATATROVE_REQS],
                             capture_output=True, text=True, timeout=900)
        if res.returncode != 0:
            tail = [ln for ln in (res.stderr or res.stdout).splitlines() if ln.strip() and "WARNING" not in ln]
            return None, f"pip install failed: {(tail or ['?'])[-1][:200]}"
        chk = subprocess.run([str(py), "-c", "import datatrove, fasttext, spacy, pyarrow"],
                             capture_output=True, text=True, timeout=300)
        if chk.returncode != 0:
            return None, f"datatrove does not import: {chk.stderr.strip().splitlines()[-1][:200]}"
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:200]
    stamp.write_text(want)
    return py, ""


def datatrove_version(py: Path) -> str:
    res = subprocess.run([str(py), "-c", "import datatrove.__about__ as a; print(a.__version__)"],
                         capture_output=True, text=True)
    if res.returncode:
        res = subprocess.run([str(py), "-m", "pip", "show", "datatrove"], capture_output=True, text=True)
        return next((ln.split()[-1] for ln in res.stdout.splitlines() if ln.startswith("Version")), "?")
    return res.stdout.strip()


def run_datatrove_job(py: Path, job: dict[str, Any], timeout: int = 900) -> dict[str, Any]:
    """Run ``_datatrove_job.py`` in the datatrove venv; its last stdout line is a JSON result."""
    job_dir = Path(job["work_dir"])
    job_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update({"HF_HOME": str((CACHE / "hf").resolve()), "DATATROVE_COLORIZE_LOGS": "0",
                "OMP_NUM_THREADS": "1", "PYTHONNOUSERSITE": "1"})
    env.pop("PYTHONPATH", None)
    script = Path(__file__).with_name("_datatrove_job.py")
    with open(job_dir / "job.log", "w") as logf:
        res = subprocess.run([str(py), "-P", str(script), json.dumps(job)], stdout=subprocess.PIPE,
                             stderr=logf, text=True, timeout=timeout, env=env)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if res.returncode != 0 or not lines:
        tail = (job_dir / "job.log").read_text(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"datatrove job failed (rc {res.returncode}): {' | '.join(tail)[:300]}")
    return json.loads(lines[-1])


# --------------------------------------------------------------------------- rows

def row(benchmark: str, compared: str, *, docs: int | None, mb: float | None, cores: int | None,
        ours: float | None, baseline: float | None, unit: str, goal: float | None = None,
        goal_op: str = ">=", ratio: float | None = None, note: str = "", details: dict | None = None,
        extra_goal: tuple[str, float, float] | None = None) -> dict[str, Any]:
    """One result row. ``ratio`` defaults to ours ÷ baseline; ``met`` compares it with ``goal``.

    ``extra_goal`` = (label, value, goal): a second, absolute goal on ``ours`` (e.g. ≥ 50 MB/s).
    """
    if ratio is None and ours is not None and baseline:
        ratio = ours / baseline
    met: bool | None = None
    missed: list[str] = []
    if goal is not None and ratio is not None:
        ok = ratio >= goal if goal_op == ">=" else ratio <= goal
        if not ok:
            missed.append(f"ratio {ratio:.2f} {'<' if goal_op == '>=' else '>'} {goal:g}")
        met = ok
    goal_text = f"{'≥' if goal_op == '>=' else '≤'} {goal:g}×" if goal is not None else "—"
    if extra_goal is not None:
        label, value, target = extra_goal
        goal_text += f"; ≥ {target:g} {label}"
        if value < target:
            missed.append(f"{value:.1f} < {target:g} {label}")
            met = False
        elif met is None:
            met = True
    return {
        "benchmark": benchmark,
        "compared": compared,
        "docs": docs,
        "mb": None if mb is None else round(mb, 2),
        "cores": cores,
        "ours": None if ours is None else round(ours, 4),
        "baseline": None if baseline is None else round(baseline, 4),
        "unit": unit,
        "ratio": None if ratio is None else round(ratio, 4),
        "goal": goal,
        "goal_op": goal_op,
        "goal_text": goal_text,
        "extra_goal": None if extra_goal is None else {"label": extra_goal[0], "value": round(extra_goal[1], 3),
                                                       "goal": extra_goal[2]},
        "met": met,
        "missed": missed,
        "note": note,
        "details": details or {},
    }


def unavailable(benchmark: str, compared: str, why: str, **kw: Any) -> dict[str, Any]:
    r = row(benchmark, compared, ours=kw.pop("ours", None), baseline=None, unit=kw.pop("unit", ""), **kw)
    r["note"] = f"baseline unavailable: {why}"
    r["met"] = None
    return r
