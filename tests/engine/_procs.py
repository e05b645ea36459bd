"""Helpers for tests that start real servers and clusters as subprocesses."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, n: int = 4000) -> str:
    """The end of a subprocess log, for failure messages."""
    return path.read_text(errors="replace")[-n:] if path.exists() else f"({path} missing)"


def start_group(cmd: list[str], env: dict[str, str], log: Path, cwd: Path = REPO) -> subprocess.Popen:
    """Start ``cmd`` (from the repository root) in its own session, output (appended) to ``log``.

    Own session: its children (uvicorn, flow-run processes, a temporary Prefect server, a local Ray)
    go with it when :func:`kill_group` kills the group.
    """
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def pids_with_env(marker: str, var: str = "CURATE_TEST_CHILD") -> list[int]:
    """Processes (this one excepted) whose environment has ``var=marker``: what a test's child started,
    inherited environment and all (a local Ray, a spawn pool), however they were detached."""
    needle = f"{var}={marker}".encode()
    found = []
    for env_file in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):
            if needle in env_file.read_bytes() and int(env_file.parent.name) != os.getpid():
                found.append(int(env_file.parent.name))
    return found


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the whole process group (a SIGTERMed ``ray start --block`` takes ~15s to wind down)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)


def prefect_env(home: Path, api_url: str | None) -> dict[str, str]:
    """This environment with its own ``PREFECT_HOME`` (a fresh SQLite database) and, if given, an API URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_", "PREFECT_PROFILE"))}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    if api_url:
        env["PREFECT_API_URL"] = api_url
    home.mkdir(parents=True, exist_ok=True)
    return env


def wait_until(cond: Callable[[], bool], what: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    """Poll ``cond`` until it holds; fail the test, with ``log``'s end, if ``proc`` exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            pytest.fail(f"{proc.args[0]} ... exited with {proc.returncode} before {what}:\n{tail(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"not {what} after {timeout:g}s:\n{tail(log)}")
        time.sleep(0.2)


def _healthy(api_url: str) -> bool:
    with contextlib.suppress(OSError), urllib.request.urlopen(f"{api_url}/health", timeout=5) as resp:
        return resp.status == 200 and json.loads(resp.read()) is True
    return False


def start_prefect_server(home: Path, port: int, log: Path, timeout: float = 180,
                         env: dict[str, str] | None = None, ui: bool = False) -> subprocess.Popen:
    """``prefect server start`` on 127.0.0.1:``port`` with its database under ``home``; returns once healthy.

    ``env``: extra server settings, e.g. a short ``PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS``.
    ``ui``: serve the web UI too, pointed at this server's API (by default it looks for one on port 4200).
    """
    api_url = f"http://127.0.0.1:{port}/api"
    ui_env = {"PREFECT_UI_API_URL": api_url} if ui else {}
    proc = start_group([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port),
                        *([] if ui else ["--no-ui"])], prefect_env(home, None) | ui_env | (env or {}), log)
    try:
        wait_until(lambda: _healthy(api_url), f"prefect server healthy at {api_url}", proc, log, timeout)
    except BaseException:
        kill_group(proc)
        raise
    return proc
