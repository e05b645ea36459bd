"""Run a scorer over every shard that still needs it: on Ray actors, or inline.

Actors hold a set-up scorer (model loaded once per worker) and are handed
shard *paths*, never data; at most one shard per actor is in flight. A shard
is scored in units (see :mod:`curate.shards`) that are kept as they finish. A
shard that raises is retried, then recorded as failed with its error while the
others finish. A worker process that dies (OOM, SIGKILL) is replaced, the
file it was writing (a temporary no reader sees) is removed, and its shard
retried from the units it had finished. Ray is imported only here and only
when workers are used, so ``import curate`` stays light.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from curate import faults
from curate.errors import ConfigError, CurateError
from curate.locks import default_timeout, store_lock
from curate.objstore import worker_env
from curate.progress import progress as progress_bar
from curate.quiet import quiet_local_ray
from curate.scoring import Scorer, scorer_fingerprint
from curate.shards import (
    UNIT_ROWS,
    UNITS_DIR,
    ShardResult,
    WorkItem,
    failure,
    plan,
    score_shard,
    units_dir,
    update_manifest,
)
from curate.store import Store, StoreWriteError, check_name, is_environment_fault

log = logging.getLogger(__name__)


@dataclass
class ScoreReport:
    """What one scorer run did; ``failed`` lists shards with their errors."""

    scorer: str
    fingerprint: str
    done: int = 0
    skipped: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    rows: int = 0
    seconds: float = 0.0
    workers: int = 0
    #: Ray nodes that left the cluster while scoring a shard here ("<address> (node <id>)"); their shards
    #: went to the workers left
    lost_nodes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_row(self) -> dict[str, Any]:
        return {
            "scorer": self.scorer,
            "shards done": self.done,
            "skipped (up to date)": self.skipped,
            "failed": len(self.failed),
            "docs": self.rows,
            "seconds": round(self.seconds, 1),
            "docs/s": round(self.rows / self.seconds) if self.seconds else 0,
        }


def init_ray(address: str | None = None, num_cpus: int | None = None) -> Any:
    """Join the cluster at ``address`` / ``RAY_ADDRESS``, or start a local Ray sized to ``num_cpus``."""
    import ray

    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS")
    if not address:
        # Ray itself would join the cluster named in its address file (left by `ray start`) and then refuse
        # num_cpus; or fail on a file a killed cluster left behind. Join a live one, start past a stale one.
        address, line = local_cluster_choice()
        if line:
            log.warning(line)
    common = {"log_to_driver": False, "configure_logging": False}
    # ship curate and scorers to workers that were not started from this checkout
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    runtime_env = {"env_vars": {"PYTHONPATH": here + os.pathsep + os.environ.get("PYTHONPATH", "")}}
    if address and address != "local":
        ray.init(address=address, runtime_env=runtime_env, **common)
    else:
        quiet_local_ray()
        ray.init(
            address="local",  # a new local Ray, whatever an address file says
            num_cpus=num_cpus or os.cpu_count(),
            include_dashboard=False,
            object_store_memory=256 << 20,
            runtime_env=runtime_env,
            **common,
        )
    return ray


def local_cluster_choice(timeout: float = 1.0) -> tuple[str | None, str | None]:
    """(address to join or None for a new local Ray, one line saying which) from Ray's address file.

    A cluster started on this machine with ``ray start`` writes its address to a file that outlives it
    when it is killed without ``ray stop``. Whether anything answers at that address decides.
    """
    from ray._private.utils import read_ray_address

    found = read_ray_address()
    if not found:
        return None, None
    host, _, port = found.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except (OSError, ValueError):
        return None, (f"Ray: nothing answers at {found} (an address file left by a cluster that was killed "
                      f"without `ray stop`): starting a new local Ray")
    return found, (f"Ray: joining the cluster started with `ray start` at {found} "
                   f"(--ray-address local starts a separate one)")


def map_on_ray(fn: Callable[[Any, Any], Any], shared: Any, parts: list[Any], *, ray_address: str | None = None) -> list[Any]:
    """``[fn(shared, part) for part in parts]`` as one-CPU Ray tasks (``shared`` is put in the object store once);
    results in the order of ``parts``. The engine's way for library code to use Ray without importing it."""
    ray = init_ray(ray_address)
    ref = ray.put(shared)
    remote = ray.remote(num_cpus=1)(fn)
    return ray.get([remote.remote(ref, part) for part in parts])


def _actor_class(ray: Any) -> Any:
    @ray.remote(max_restarts=0)
    class ScorerActor:
        """Holds one set-up scorer; scores whole shards on request."""

        def __init__(self, store_uri: str, scorer: Scorer, threads: int) -> None:
            _limit_threads(threads)
            self.store = Store.open(store_uri)
            self.scorer = scorer
            # kept, not raised: an actor that dies in __init__ reports only a Ray traceback, and the
            # driver would retry every shard on it; ready() hands the clear error to the driver instead
            self.setup_error: CurateError | None = None
            try:
                setup_scorer(self.scorer)
            except CurateError as exc:
                self.setup_error = exc

        def ready(self) -> CurateError | None:
            return self.setup_error

        def score(self, item: WorkItem, unit_rows: int, units: Any = None) -> ShardResult:
            """Score one shard; each finished unit is reported to ``units`` (a UnitCounter), not waited on."""
            if self.setup_error is not None:
                raise self.setup_error
            report = (lambda rows: units.add.remote(item.output, rows)) if units is not None else None
            return score_shard(self.store, self.scorer, item, unit_rows=unit_rows, on_unit=report)

        def pid(self) -> int:
            return os.getpid()

        def node(self) -> str:
            return ray.get_runtime_context().get_node_id()

    return ScorerActor


class ScorerSetupError(CurateError):
    """A scorer could not set up (load its model) in a worker: no shard can be scored."""


def setup_scorer(scorer: Scorer) -> None:
    """``scorer.setup()``, with a failure turned into one message that names the scorer and what to check."""
    try:
        scorer.setup()
    except CurateError:
        raise
    except Exception as exc:  # noqa: BLE001 - model libraries raise anything (ValueError, RuntimeError, OSError)
        raise ScorerSetupError(
            f"scorer {scorer.name!r} could not load: {type(exc).__name__}: {str(exc).rstrip(' .!')}. "
            f"Check its settings and model "
            f"files (a model path must name a complete model file of the right kind: retrain or copy it again), "
            f"then re-run; nothing was scored"
        ) from None


def _limit_threads(threads: int) -> None:
    """Size intra-op thread pools to this worker's CPU share (two oversubscribed torch jobs ran 10x slower)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass


def run_scorer(
    store: Store | str,
    scorer: Scorer,
    *,
    corpora: Iterable[str] | None = None,
    workers: int | None = None,
    retries: int = 1,
    ray_address: str | None = None,
    progress: bool | None = None,
    on_result: Callable[[ShardResult], None] | None = None,
    lock_timeout: float | None = None,
    unit_rows: int | None = None,
) -> ScoreReport:
    """Score every shard that is missing or stale for ``scorer``; skip the rest.

    ``workers=0`` scores inline in this process (no Ray). Otherwise ``workers``
    Ray actors (default: one per CPU of the local machine or cluster).

    One run per (store, scorer) at a time: a second run waits for the first
    (then skips the shards it finished), or after ``lock_timeout`` seconds
    fails naming the holder (default: ``CURATE_LOCK_TIMEOUT``, else wait).
    A store that refuses writes (permissions, space) stops the run at once
    with :class:`~curate.store.StoreWriteError`; finished shards are kept.

    ``unit_rows`` (default: ``CURATE_UNIT_ROWS``, else 4096) is about how many
    documents a shard's units hold: what a killed worker can lose.
    """
    st = Store.of(store)
    lock = f"score-{check_name('scorer', scorer.name)}"
    timeout = default_timeout() if lock_timeout is None else lock_timeout
    with store_lock(st, lock, f"score {scorer.name!r} on {st.uri}", timeout=timeout):
        return _run_locked(st, scorer, corpora, workers, retries, ray_address, progress, on_result,
                           unit_rows or _unit_rows_setting())


def _unit_rows_setting() -> int:
    """``CURATE_UNIT_ROWS`` (documents per unit of a shard), else the default."""
    value = os.environ.get("CURATE_UNIT_ROWS", "").strip()
    if not value:
        return UNIT_ROWS
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"CURATE_UNIT_ROWS={value!r}: give a whole number of documents of at least 1 "
                          f"(default {UNIT_ROWS}), or unset it")
    return int(value)


def _run_locked(st: Store, scorer: Scorer, corpora: Iterable[str] | None, workers: int | None, retries: int,
                ray_address: str | None, progress: bool | None,
                on_result: Callable[[ShardResult], None] | None, unit_rows: int) -> ScoreReport:

    fp = scorer_fingerprint(scorer)
    todo, done = plan(st, scorer.name, fp, corpora)
    _clean_leftovers(st, scorer.name, done)
    report = ScoreReport(scorer=scorer.name, fingerprint=fp, skipped=len(done))
    items = {i.output: i for i in [*todo, *done]}
    results: list[ShardResult] = []
    t0 = time.perf_counter()
    last_save, save_every = time.monotonic(), 5.0

    def save_manifest(final: bool) -> None:
        nonlocal save_every
        t = time.monotonic()
        try:
            update_manifest(st, scorer.name, fp, scorer.config(), results, items, done=done)
            # the manifest grows with the shards: rewriting it may take at most a twentieth of the run
            save_every = max(5.0, 20 * (time.monotonic() - t))
        except StoreWriteError:
            if final:
                raise
            # the manifest is a report (the files carry the truth): a failed interim rewrite is retried at the end

    def record(res: ShardResult) -> None:
        nonlocal last_save
        results.append(res)
        if res.status == "done":
            report.done += 1
            report.rows += res.rows
        else:
            report.failed.append({"shard": items[res.output].shard, "error": res.error, "attempts": res.attempts})
        if on_result:
            on_result(res)
        faults.point("score.after_result")
        if time.monotonic() - last_save > save_every:  # batch the manifest's rewrites
            save_manifest(final=False)
            last_save = time.monotonic()

    def stopped() -> bool:  # a store that refuses writes refuses every later shard too: stop dispatching
        return any(r.fatal for r in results)

    if todo:
        total_rows = sum(i.rows for i in todo)
        with progress_bar(f"score {scorer.name}", total=total_rows, enabled=progress) as advance:
            rows_done = RowsDone(advance)

            def tick(res: ShardResult) -> None:
                record(res)
                if res.status == "done":  # a failed shard's finished units stay counted
                    rows_done.unit(res.output, items[res.output].rows)

            if workers == 0:
                report.workers = 0
                _run_inline(st, scorer, todo, retries, tick, stopped, unit_rows, rows_done.unit)
            else:
                report.workers = _run_on_ray(st, scorer, todo, workers, retries, ray_address, tick, stopped,
                                             unit_rows, report.lost_nodes.append, rows_done.unit)
    fatal = next((r for r in results if r.fatal), None)
    if fatal is None:
        save_manifest(final=True)
    else:
        with contextlib.suppress(StoreWriteError):
            save_manifest(final=True)
        raise StoreWriteError(
            f"scoring {scorer.name!r} stopped: {fatal.error.split(': ', 1)[-1]} "
            f"({report.done} shard(s) finished in this run and {report.skipped} earlier are kept)"
        )
    report.seconds = time.perf_counter() - t0
    return report


def _clean_leftovers(st: Store, scorer_name: str, done: list[WorkItem]) -> None:
    """Under the lock, what killed runs left: temporaries (never a live writer's) and the units of shards since done."""
    st.clean_temporaries(st.features_dir(scorer_name))
    units = f"{UNITS_DIR}/{check_name('scorer', scorer_name)}"
    started = set(st.list_dirs(units))
    if not started:
        return
    for item in done:  # killed between writing the feature file and removing its units
        if units_dir(item).rsplit("/", 1)[1] in started:
            st.delete_dir(units_dir(item))
    for name in st.list_dirs(units):
        st.clean_temporaries(f"{units}/{name}")


class RowsDone:
    """A progress bar's ticks per unit: each shard advances by the rows its units reach, counted once however
    often a retry reports the units an earlier attempt kept (a finished shard reports all its rows)."""

    def __init__(self, advance: Callable[[int], None]) -> None:
        self.advance = advance
        self.reached: dict[str, int] = {}

    def unit(self, output: str, rows: int) -> None:
        """``output``'s shard has its first ``rows`` rows scored."""
        before = self.reached.get(output, 0)
        if rows > before:
            self.reached[output] = rows
            self.advance(rows - before)


def _run_inline(st: Store, scorer: Scorer, todo: list[WorkItem], retries: int, record: Callable[[ShardResult], None],
                stopped: Callable[[], bool], unit_rows: int,
                on_unit: Callable[[str, int], None] = lambda _output, _rows: None) -> None:
    setup_scorer(scorer)
    for item in todo:
        if stopped():
            return
        for attempt in range(1, retries + 2):
            try:
                res = score_shard(st, scorer, item, unit_rows=unit_rows,
                                  on_unit=lambda rows, out=item.output: on_unit(out, rows))
            except Exception as exc:  # noqa: BLE001 - any scorer error becomes a recorded failure
                if attempt > retries or is_environment_fault(exc):
                    record(failure(item, exc, attempt))
                    break
                continue
            res.attempts = attempt
            record(res)  # outside the try: a failing report is not a failing shard
            break


def _run_on_ray(st: Store, scorer: Scorer, todo: list[WorkItem], workers: int | None, retries: int,
                ray_address: str | None, record: Callable[[ShardResult], None], stopped: Callable[[], bool],
                unit_rows: int, on_lost_node: Callable[[str], None] = lambda _node: None,
                on_unit: Callable[[str, int], None] = lambda _output, _rows: None) -> int:
    ray = init_ray(ray_address)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    n = max(1, min(workers or cpus, len(todo)))
    # what one worker needs: one CPU, and a GPU share for an LM scorer on CUDA (a scorer that is not a
    # BaseScorer asks for one CPU)
    resources = getattr(scorer, "ray_resources", lambda: {"num_cpus": 1})()
    gpu_share = float(resources.get("num_gpus") or 0)
    if gpu_share:
        gpus = float(ray.cluster_resources().get("GPU", 0))
        if gpus < gpu_share:
            raise ConfigError(f"scorer {scorer.name!r} runs on CUDA and asks {gpu_share:g} GPU per worker, but the Ray "
                              f"cluster has {gpus:g} GPU(s): set {scorer.name}.device=cpu, or join a cluster with GPUs")
        n = max(1, min(n, int(gpus / gpu_share + 1e-9)))  # no more workers than the GPUs can hold
    threads = max(1, cpus // n) if not ray_address and not os.environ.get("RAY_ADDRESS") else 1
    Actor = _actor_class(ray)

    options: dict[str, Any] = {"num_cpus": 1, **resources}
    if not st.is_local:  # each actor opens the store itself: hand it this process's S3 settings
        options["runtime_env"] = {"env_vars": worker_env()}  # merged per variable with init_ray's PYTHONPATH

    def spawn() -> Any:
        return Actor.options(**options).remote(st.uri, scorer, threads)

    idle = [spawn() for _ in range(n)]
    _check_ready(ray, idle, scorer)
    units = _unit_counter(ray).options(num_cpus=0).remote()  # workers report finished units to the bar here

    def drain_units() -> None:
        with contextlib.suppress(ray.exceptions.RayError):  # progress only: a lost report is not a lost unit
            for output, rows in ray.get(units.take.remote()):
                on_unit(output, rows)

    nodes = dict(zip(idle, ray.get([a.node.remote() for a in idle])))  # actor -> the node it runs on
    queue: deque[tuple[WorkItem, int]] = deque((i, 1) for i in todo)
    pending: dict[Any, tuple[WorkItem, int, Any]] = {}
    try:
        while (queue and not stopped()) or pending:
            if not idle and not pending:  # every worker died and none could be replaced
                for item, attempt in queue:
                    record(failure(item, NoWorkers(), attempt))
                queue.clear()
                break
            while idle and queue and not stopped():
                item, attempt = queue.popleft()
                actor = idle.pop()
                pending[actor.score.remote(item, unit_rows, units)] = (item, attempt, actor)
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=UNIT_POLL)
            drain_units()
            if not ready:
                continue
            ref = ready[0]
            item, attempt, actor = pending.pop(ref)
            try:
                res = ray.get(ref)
                res.attempts = attempt
                record(res)
                idle.append(actor)
            except ray.exceptions.RayTaskError as exc:  # the scorer raised: the actor is fine
                idle.append(actor)
                _retry_or_fail(queue, item, attempt, retries, exc.cause or exc, record)
            except ray.exceptions.RayActorError as exc:  # the worker process or its node died: replace it
                with contextlib.suppress(Exception):  # gone already; an unreachable one must not write on
                    ray.kill(actor)
                _drop_temporary(st, item)
                node = nodes.pop(actor, None)
                # a worker killed on a live node is reported dead at once; a node that left shows first as an
                # unreachable actor ("temporarily unavailable"), and as dead once the cluster notices
                gone = NODE_DEATH_WAIT if isinstance(exc, ray.exceptions.ActorUnavailableError) else 0.0
                lost = node is not None and not _node_alive(ray, node, wait=gone)
                if lost:
                    name = _node_name(ray, node)
                    log.warning("Ray node %s left the cluster while scoring %s; its shard goes to the workers left "
                                "(the units it finished are kept)", name, item.shard)
                    on_lost_node(name)
                replacement = _replacement(ray, spawn, wait=0.0 if lost and _free_cpus(ray) < 1 else REPLACE_WAIT)
                if replacement is not None:
                    idle.append(replacement[0])
                    nodes[replacement[0]] = replacement[1]
                _retry_or_fail(queue, item, attempt, retries, WorkerDied(exc), record)
    finally:
        for actor in idle + [a for _, _, a in pending.values()] + [units]:
            ray.kill(actor)
    return n


#: seconds between the driver's looks at the units its workers finished (the progress bar's refresh)
UNIT_POLL = 1.0


def _unit_counter(ray: Any) -> Any:
    @ray.remote(max_restarts=0)
    class UnitCounter:
        """Where workers report the units they finish, for the driver's progress bar to collect."""

        def __init__(self) -> None:
            self.reports: list[tuple[str, int]] = []

        def add(self, output: str, rows: int) -> None:
            self.reports.append((output, rows))

        def take(self) -> list[tuple[str, int]]:
            reports, self.reports = self.reports, []
            return reports

    return UnitCounter


#: seconds a replacement for a dead worker may take to start (and load its model) before the run goes on without it
REPLACE_WAIT = 120.0


def _replacement(ray: Any, spawn: Callable[[], Any], wait: float) -> tuple[Any, str] | None:
    """A new worker and its node, or None when none starts within ``wait`` seconds (no free CPU left in the
    cluster, e.g. after a node left): the run goes on with the workers it has."""
    if wait <= 0:
        return None
    actor = spawn()
    where = actor.node.remote()
    ready, _ = ray.wait([where], timeout=wait)
    try:
        if ready:
            return actor, ray.get(ready[0])
    except ray.exceptions.RayError:
        pass
    with contextlib.suppress(Exception):
        ray.kill(actor)
    return None


def _free_cpus(ray: Any) -> float:
    return float(ray.available_resources().get("CPU", 0))


#: seconds to wait for the cluster to declare a node dead after its worker became unreachable
NODE_DEATH_WAIT = 30.0


def _node_alive(ray: Any, node_id: str, wait: float = 0.0) -> bool:
    """Whether the cluster still lists ``node_id`` as alive (polled up to ``wait`` seconds for it to go)."""
    deadline = time.monotonic() + wait
    while True:
        alive = any(n.get("NodeID") == node_id and n.get("Alive") for n in ray.nodes())
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.5)


def _node_name(ray: Any, node_id: str) -> str:
    """``<address> (node <id prefix>)``: what a user finds in `ray status` / the dashboard."""
    address = next((n.get("NodeManagerAddress") for n in ray.nodes() if n.get("NodeID") == node_id), "?")
    return f"{address} (node {node_id[:12]})"


class NoWorkers(RuntimeError):
    """Every Ray worker died and no replacement could start."""

    def __init__(self) -> None:
        super().__init__("no Ray worker left to score this shard: the workers died (or their nodes left the "
                         "cluster) and no new one could start within the wait; add nodes or free CPUs, then "
                         "re-run (finished shards and units are kept)")


class WorkerDied(RuntimeError):
    """The Ray worker process scoring a shard died mid-shard (killed, out of memory, crashed)."""

    def __init__(self, exc: BaseException) -> None:
        # Ray's text is a paragraph of guesses; its exit type says enough (SYSTEM_ERROR: killed or crashed)
        kind = re.search(r"Worker exit type: (\w+)", str(exc))
        detail = f"Ray exit type {kind.group(1)}" if kind else _last_line(exc)[:200]
        super().__init__(f"the Ray worker process scoring this shard died before finishing it ({detail}: killed, "
                         "out of memory or crashed); the units it finished are kept. Re-run to retry it; if "
                         "workers run out of memory, use fewer --workers")


def _last_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__


def _drop_temporary(st: Store, item: WorkItem) -> None:
    """Remove the half-written unit or feature file a dead worker left (only its writer had it open)."""
    rel_dir, name = item.output.rsplit("/", 1)
    with contextlib.suppress(OSError):
        st.clean_temporaries(rel_dir, of=name)
        st.clean_temporaries(units_dir(item))


def _check_ready(ray: Any, actors: list[Any], scorer: Scorer) -> None:
    """Wait for every actor's setup; a scorer that cannot load fails the run once, clearly, before any shard."""
    try:
        errors = [e for e in ray.get([a.ready.remote() for a in actors]) if e is not None]
    except ray.exceptions.RayActorError as exc:  # the worker process died while loading (OOM, crash)
        errors = [ScorerSetupError(f"scorer {scorer.name!r} could not start on a Ray worker: "
                                   f"{_last_line(exc)}; nothing was scored")]
    if errors:
        for a in actors:
            ray.kill(a)
        raise errors[0]


def _retry_or_fail(queue: deque, item: WorkItem, attempt: int, retries: int, exc: BaseException,
                   record: Callable[[ShardResult], None]) -> None:
    if attempt <= retries and not is_environment_fault(exc):
        queue.append((item, attempt + 1))
    else:
        record(failure(item, exc, attempt))
