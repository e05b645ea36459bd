"""`curate score` as a driver joining a real multi-process Ray cluster started with `ray start --head`.

Everything Ray-side runs in subprocesses with their own session and temp dir, so the local Ray of the
pytest process (``ray_local``) is neither joined nor disturbed: no ``ray stop``, no shared
``/tmp/ray/ray_current_cluster``. The cluster uses token authentication with a token made here and
handed to the head and to every driver through ``RAY_AUTH_TOKEN`` (``~/.ray/auth_token`` is not used).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from curate import connect
from tests.engine._procs import BIN, REPO, kill_group, wait_until
from tests.engine._procs import free_port as _free_port
from tests.engine._procs import tail as _tail

pytestmark = pytest.mark.slow


def _ray_env(token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "RAY_AUTH"))}
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token,
               PREFECT_SERVER_ANALYTICS_ENABLED="false")
    return env


def _reap_by_cmdline(marker: str) -> list[int]:
    """Kill any process still naming ``marker`` (the cluster's temp dir) in its command line."""
    killed = []
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():
        return killed
    for d in proc_dir.iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if marker in cmd:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(d.name), signal.SIGKILL)
                killed.append(int(d.name))
    return killed


@dataclass
class Cluster:
    address: str
    token: str
    temp_dir: Path
    log: Path


@pytest.fixture
def ray_cluster() -> Iterator[Cluster]:
    """A one-node Ray cluster (head only, 2 CPUs) in its own process group; killed afterwards."""
    # short temp dir: Ray puts unix sockets under it (108-byte path limit)
    temp_dir = Path(tempfile.mkdtemp(prefix="curate-rc-", dir="/tmp"))
    token = secrets.token_hex(32)
    port = _free_port()
    log = temp_dir / "head.log"
    cmd = [
        str(BIN / "ray"), "start", "--head", "--block",
        "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "2",
        "--include-dashboard", "false", "--temp-dir", str(temp_dir),
        "--object-store-memory", str(256 << 20),
        # fixed defaults (8265, 52365) would collide with any other Ray on this machine
        "--dashboard-port", str(_free_port()), "--dashboard-agent-listen-port", str(_free_port()),
    ]
    with open(log, "wb") as out:
        head = subprocess.Popen(cmd, cwd=temp_dir, env=_ray_env(token), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_until(lambda: "Ray runtime started" in log.read_text(errors="replace"), "ray start --head up", head, log)
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            pass
        yield Cluster(f"127.0.0.1:{port}", token, temp_dir, log)
    finally:
        kill_group(head)
        _reap_by_cmdline(str(temp_dir))
        shutil.rmtree(temp_dir, ignore_errors=True)


CLUSTER_STATE = """
import json, sys
import ray
from ray._private import state
ray.init(address=sys.argv[1], log_to_driver=False, configure_logging=False)
print("STATE " + json.dumps({
    "jobs": [{k: j.get(k) for k in ("JobID", "DriverPid", "Entrypoint", "IsDead")} for j in state.jobs()],
    "actors": [{"class": a["ActorClassName"], "job": a["JobID"], "state": a["State"], "node": a["Address"]["NodeID"]}
               for a in state.actors().values()],
    "nodes": [n["NodeID"] for n in ray.nodes() if n["Alive"]],
    "cpus": ray.cluster_resources().get("CPU"),
}))
"""


def _cluster_state(cluster: Cluster, token: str) -> subprocess.CompletedProcess:
    """Ask the cluster's GCS (no dashboard needed) for its jobs, actors and nodes, as a separate driver."""
    return subprocess.run([sys.executable, "-c", CLUSTER_STATE, cluster.address], cwd=REPO, env=_ray_env(token),
                          capture_output=True, text=True, timeout=120, check=False)


def _drive(store: Path, env: dict[str, str], *args: str) -> tuple[int | None, Path, int]:
    """``curate score --scorers heuristics`` on ``store`` as its own driver process: (exit code, log, pid)."""
    log = store.parent / "driver.log"
    cmd = [str(BIN / "curate"), "score", "--scorers", "heuristics", "--store", str(store), *args]
    with open(log, "wb") as out:
        # own session: the driver's temporary Prefect server is reaped with it;
        # own PREFECT_HOME: the run's history (artifacts...) stays out of the default Prefect database;
        # its temporary server then migrates a fresh database, which on a loaded machine outlasts the 20s default
        env = dict(env, PREFECT_HOME=str(store.parent / "prefect-home"),
                   PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180")
        driver = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        try:
            rc = driver.wait(timeout=300)
        except subprocess.TimeoutExpired:
            rc = None
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(driver.pid, signal.SIGKILL)
    return rc, log, driver.pid


def _driver_jobs(cluster: Cluster, pid: int) -> list[dict]:
    probe = _cluster_state(cluster, cluster.token)
    assert probe.returncode == 0, probe.stdout[-2000:] + probe.stderr[-4000:]
    state = json.loads(next(line for line in probe.stdout.splitlines() if line.startswith("STATE "))[6:])
    return [j for j in state["jobs"] if j["DriverPid"] == pid]


def _address_file_env(token: str, ray_tmp: Path, address: str) -> dict[str, str]:
    """A driver's environment with no address given and Ray's default address file naming ``address``:
    what `ray start` leaves in /tmp/ray, here under a private RAY_TMPDIR."""
    (ray_tmp / "ray").mkdir(parents=True, exist_ok=True)
    (ray_tmp / "ray" / "ray_current_cluster").write_text(address)
    return dict(_ray_env(token), RAY_TMPDIR=str(ray_tmp))


def test_curate_score_as_a_driver_of_a_ray_cluster(sharded_store, ray_cluster):
    rc, log, pid = _drive(sharded_store, _ray_env(ray_cluster.token), "--ray-address", ray_cluster.address)
    # every shard scored, exactly one feature row per document
    features = sharded_store / "features" / "heuristics"
    manifest = json.loads((features / "_manifest.json").read_text())
    assert len(manifest["shards"]) == 6 and all(s["status"] == "done" for s in manifest["shards"].values())
    assert len(list(features.glob("*.parquet"))) == 6
    con = connect(sharded_store)
    docs = con.execute("SELECT count(*) FROM docs").fetchone()[0]
    rows, distinct = con.execute("SELECT count(*), count(DISTINCT doc_id) FROM heuristics").fetchone()
    assert rows == distinct == docs == 300
    assert con.execute("SELECT count(*) FROM docs ANTI JOIN heuristics USING (doc_id)").fetchone()[0] == 0

    # the work ran on the cluster: its GCS has the curate driver's job and that job's scorer actors
    probe = _cluster_state(ray_cluster, ray_cluster.token)
    assert probe.returncode == 0, probe.stdout[-2000:] + probe.stderr[-4000:]
    state = json.loads(next(line for line in probe.stdout.splitlines() if line.startswith("STATE "))[6:])
    assert state["cpus"] == 2 and len(state["nodes"]) == 1
    jobs = [j for j in state["jobs"] if j["DriverPid"] == pid]
    assert len(jobs) == 1, f"no job of driver pid {pid} in {state['jobs']}\n{context}"
    assert "curate" in jobs[0]["Entrypoint"] and jobs[0]["IsDead"]
    actors = [a for a in state["actors"] if a["job"] == jobs[0]["JobID"]]
    # one scorer actor per cluster CPU (2, for 6 shards) and the counter of finished units the progress bar
    # reads, all on the head node, all released when done
    assert sorted(a["class"].rsplit(".", 1)[-1] for a in actors) == ["ScorerActor"] * 2 + ["UnitCounter"], actors
    assert {a["node"] for a in actors} == set(state["nodes"])
    assert {a["state"] for a in actors} == {"DEAD"}

    # and the cluster really checks the token: the same GCS handshake with another token is refused
    handshake = "import sys\nfrom ray._raylet import GcsClient\nGcsClient(address=sys.argv[1])\nprint('CONNECTED')\n"
    ok, bad = (subprocess.run([sys.executable, "-c", handshake, ray_cluster.address], cwd=REPO, env=_ray_env(t),
                              capture_output=True, text=True, timeout=120, check=False)
               for t in (ray_cluster.token, secrets.token_hex(32)))
    assert ok.returncode == 0 and "CONNECTED" in ok.stdout, ok.stderr[-3000:]
    assert bad.returncode != 0 and "CONNECTED" not in bad.stdout
    assert "AuthenticationError" in bad.stderr and "InvalidAuthToken" in bad.stderr, bad.stderr[-3000:]


def test_without_an_address_curate_joins_the_live_cluster_its_address_file_names(sharded_store, ray_cluster):
    """Ray alone would join it and then refuse the num_cpus curate passes for a local Ray (a traceback)."""
    env = _address_file_env(ray_cluster.token, ray_cluster.temp_dir / "t", ray_cluster.address)
    rc, log, pid = _drive(sharded_store, env)
    text = _tail(log, 8000)
    assert rc == 0, text
    assert f"joining the cluster started with `ray start` at {ray_cluster.address}" in " ".join(text.split())
    assert len(_driver_jobs(ray_cluster, pid)) == 1, text  # the work ran on that cluster
    assert connect(sharded_store).execute("SELECT count(DISTINCT doc_id) FROM heuristics").fetchone()[0] == 300


def test_without_an_address_curate_starts_a_local_ray_past_a_stale_address_file(sharded_store):
    """A cluster killed without `ray stop` leaves its address file: nothing answers there any more."""
    ray_tmp = Path(tempfile.mkdtemp(prefix="curate-st-", dir="/tmp"))
    dead = f"127.0.0.1:{_free_port()}"
    try:
        rc, log, _ = _drive(sharded_store, _address_file_env(secrets.token_hex(32), ray_tmp, dead))
        text = _tail(log, 8000)
        assert rc == 0, text
        assert f"nothing answers at {dead}" in " ".join(text.split()) and "starting a new local Ray" in text
        assert connect(sharded_store).execute("SELECT count(DISTINCT doc_id) FROM heuristics").fetchone()[0] == 300
    finally:
        _reap_by_cmdline(str(ray_tmp))
        shutil.rmtree(ray_tmp, ignore_errors=True)
