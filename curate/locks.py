"""Advisory locks that keep two writers of the same thing (a scorer's feature table, a corpus) apart.

A lock is ``locks/<name>.lock`` under the store, held with ``fcntl.flock`` on
an open file. The kernel drops a ``flock`` when its process exits for any
reason (SIGKILL and OOM included), so a lock left by a dead run is never
stale: the next run takes it at once. The file also carries who holds it
(pid, host, start time, what it is doing) so a run that finds it taken can say
whose it is.

The file is never deleted or replaced: unlinking a lock file while another
process waits on the old inode would let two holders in at once.

Object-store URIs have no ``flock``; there the lock is a lease object taken and
renewed with S3's conditional writes (:mod:`curate.lease`, needs boto3). Without
boto3 it is a no-op and safety rests on the atomic commit protocol alone (two
writers then do the same work twice but never leave a half or duplicated
feature file).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from curate.errors import CurateError
from curate.store import Store

LOCK_DIR = "locks"
TIMEOUT_ENV = "CURATE_LOCK_TIMEOUT"
_POLL_S = 0.2
# filesystems without flock support (some network mounts) answer with one of these
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}

log = logging.getLogger(__name__)


class LockedError(CurateError):
    """Another live process holds the lock and the caller chose not to wait (longer)."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as written into the lock file by the holder."""

    pid: int
    host: str
    started: str
    what: str
    command: str = ""

    def describe(self) -> str:
        cmd = f", command: {self.command}" if self.command else ""
        return f"pid {self.pid} on host {self.host}, started {self.started} ({self.what}{cmd})"

    @classmethod
    def me(cls, what: str) -> Holder:
        return cls(pid=os.getpid(), host=socket.gethostname(),
                   started=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), what=what,
                   command=" ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:300])


def default_timeout() -> float | None:
    """Seconds to wait for a busy lock: ``CURATE_LOCK_TIMEOUT`` if set (0 = fail at once), else wait."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise CurateError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds (0 fails at once; unset waits)") from None
    return max(value, 0.0)


def lock_path(store: Store, name: str) -> Path:
    """Where the lock called ``name`` lives (local stores only)."""
    return Path(store.path(LOCK_DIR, f"{name}.lock"))


def read_holder(path: Path) -> Holder | None:
    """The holder recorded in a lock file, or None when empty or unreadable (between holders)."""
    try:
        data = json.loads(path.read_text() or "null")
        return Holder(**data) if isinstance(data, dict) else None
    except (OSError, ValueError, TypeError):
        return None


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


@contextlib.contextmanager
def store_lock(
    store: Store,
    name: str,
    what: str,
    *,
    timeout: float | None = None,
    on_wait: Callable[[Holder | None], None] | None = None,
) -> Iterator[Holder | None]:
    """Hold the store lock ``name`` for the block; yields who held it before us if we had to wait.

    ``timeout``: None waits as long as it takes, 0 fails at once, otherwise seconds.
    ``on_wait`` is called once with the current holder when the lock is busy (default: a log
    warning naming it). Raises :class:`LockedError` naming the holder when the time is up.
    """
    if not store.is_local:
        from curate.lease import have_boto3, object_store_lease

        if not have_boto3():
            log.warning("curate: %s runs without a lease on the object store (install boto3 for one)", what)
            yield None
            return
        with object_store_lease(store, name, what, timeout=timeout) as waited_for:
            yield waited_for
        return
    path = lock_path(store, name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise CurateError(f"cannot create the lock file {path}: {exc.strerror}; "
                          f"check that the store directory {store.root} is writable") from None
    waited_for: Holder | None = None
    try:
        try:
            got = _try_flock(fd)
        except OSError as exc:
            if exc.errno not in _NO_FLOCK:
                raise
            log.warning("the filesystem of %s does not support flock: %s runs unlocked", path, what)
            yield None
            return
        if not got:
            waited_for = read_holder(path)
            _wait(fd, path, name, what, waited_for, timeout, on_wait or _log_wait)
        me = Holder.me(what)
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(asdict(me)) + "\n").encode(), 0)
        try:
            yield waited_for
        finally:
            # an empty file means "free": a reader between our unlock and the next holder's write sees no one
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _log_wait(holder: Holder | None) -> None:
    # with no logging configured, Python's last-resort handler still prints warnings to stderr
    who = holder.describe() if holder else "another process"
    log.warning("curate: waiting for %s (set %s=0 to fail instead of waiting)", who, TIMEOUT_ENV)


def _wait(fd: int, path: Path, name: str, what: str, holder: Holder | None, timeout: float | None,
          on_wait: Callable[[Holder | None], None]) -> None:
    """Poll the lock until it is free or ``timeout`` runs out (then raise, naming the holder)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    if timeout is None or timeout > 0:
        on_wait(holder)
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            holder = read_holder(path) or holder
            who = holder.describe() if holder else "another process (it did not record itself)"
            waited = f" after waiting {timeout:g}s" if timeout else ""
            raise LockedError(
                f"cannot {what} now: another run holds the lock {name!r}{waited} — {who}. "
                f"Wait for that run to finish and re-run "
                f"(work it finished is skipped), or stop it; the lock is released as soon as that process "
                f"exits, even if it is killed. Set {TIMEOUT_ENV}=<seconds> to wait (unset waits for as long "
                f"as it takes). Lock file: {path}"
            )
        time.sleep(_POLL_S)
        if _try_flock(fd):
            return
