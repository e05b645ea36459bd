"""Leases: the store lock on an object store, where there is no ``flock``, from S3's conditional writes.

A lease is the object ``locks/<name>.lease`` holding who holds it (:class:`curate.locks.Holder`) and
when it expires. S3 (and S3-compatible servers) apply a write only if its precondition holds, which
is what makes each step safe between drivers on different machines:

- **take**: ``PUT`` with ``If-None-Match: *`` — of drivers racing for a free lease, exactly one
  creates it; the others get 412 and wait;
- **hold**: a thread rewrites it every ``ttl / 3`` with ``If-Match: <our ETag>``, pushing the expiry
  on; a renewal refused means another driver took it over (we stopped renewing for a whole ``ttl``:
  a stalled process), which is logged — the atomic commit protocol still keeps the data whole;
- **take over**: a lease whose expiry has passed was left by a driver that died (SIGKILL, a lost
  node): ``PUT`` with ``If-Match: <its ETag>`` replaces it — of two drivers that both see it
  expired, one wins — and one line names the dead holder;
- **release**: ``DELETE`` of our lease.

Expiry is the holder's clock against the reader's, so the ``ttl`` (``CURATE_LEASE_TTL``, default
60 s) must exceed the clock skew between machines by a margin.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any

from curate.errors import CurateError
from curate.locks import TIMEOUT_ENV, Holder, LockedError
from curate.objstore import endpoint_override
from curate.store import Store

TTL_ENV = "CURATE_LEASE_TTL"
DEFAULT_TTL_S = 60.0
_POLL_S = 0.5

log = logging.getLogger(__name__)


def lease_ttl() -> float:
    """Seconds a lease lives without renewal: ``CURATE_LEASE_TTL`` or 60."""
    raw = os.environ.get(TTL_ENV, "").strip()
    try:
        ttl = float(raw) if raw else DEFAULT_TTL_S
    except ValueError:
        raise CurateError(f"{TTL_ENV}={raw!r} is not a number of seconds") from None
    if ttl <= 0:
        raise CurateError(f"{TTL_ENV} must be positive, got {raw!r}")
    return ttl


def have_boto3() -> bool:
    try:
        import boto3  # noqa: F401
    except ImportError:
        return False
    return True


def _client(store: Store) -> Any:
    """A boto3 S3 client for the store's server (the URI's ``endpoint_override``, else the AWS variables)."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_override(store.uri))


def _split(store: Store, name: str) -> tuple[str, str]:
    bucket, _, key = store.path("locks", f"{name}.lease").partition("/")
    return bucket, key


def _status(exc: Exception) -> int | None:
    return getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")


class _Lease:
    """One lease object: its bucket and key, the client, and our ETag while we hold it."""

    def __init__(self, store: Store, name: str, what: str, ttl: float) -> None:
        self.client = _client(store)
        self.bucket, self.key = _split(store, name)
        self.what, self.ttl = what, ttl
        self.me = Holder.me(what)
        self.etag: str | None = None

    def _body(self) -> bytes:
        expires = time.time() + self.ttl
        return json.dumps({**asdict(self.me), "expires": expires,
                           "expires_at": _dt.datetime.fromtimestamp(expires, _dt.timezone.utc).isoformat(
                               timespec="seconds")}).encode()

    def _put(self, **condition: str) -> bool:
        """A conditional PUT of our lease; False when the precondition failed (412) or raced (409)."""
        try:
            self.etag = self.client.put_object(Bucket=self.bucket, Key=self.key, Body=self._body(),
                                               ContentType="application/json", **condition)["ETag"]
            return True
        except Exception as exc:  # botocore's ClientError (its status says which); anything else is re-raised
            if _status(exc) in (409, 412):
                return False
            raise

    def current(self) -> tuple[dict[str, Any] | None, str | None]:
        """(the lease's content, its ETag), or (None, None) when there is none."""
        try:
            got = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except Exception as exc:  # botocore's ClientError: only a 404 is an answer
            if _status(exc) == 404:
                return None, None
            raise
        try:
            data = json.loads(got["Body"].read())
        except ValueError:
            data = {}
        return (data if isinstance(data, dict) else {}), got["ETag"]

    def try_take(self) -> tuple[bool, dict[str, Any] | None]:
        """Take the lease if it is free or expired: (taken, the holder it had, when it had one)."""
        if self._put(IfNoneMatch="*"):
            return True, None
        held, etag = self.current()
        if held is None:  # released between our PUT and GET: try again at once
            return self._put(IfNoneMatch="*"), None
        if float(held.get("expires", 0)) < time.time() and etag and self._put(IfMatch=etag):
            log.warning("curate: the lease %s of %s expired at %s (its driver died or stalled): taken over",
                        self.key, _describe(held), held.get("expires_at", "?"))
            return True, held
        return False, held

    def renew(self) -> bool:
        return self.etag is not None and self._put(IfMatch=self.etag)

    def release(self) -> None:
        _held, etag = self.current()
        if etag is not None and etag == self.etag:  # never delete a lease another driver took over
            with contextlib.suppress(Exception):
                self.client.delete_object(Bucket=self.bucket, Key=self.key)


def _holder(held: dict[str, Any] | None) -> Holder | None:
    if not held:
        return None
    with contextlib.suppress(TypeError, ValueError):
        return Holder(pid=int(held["pid"]), host=str(held["host"]), started=str(held["started"]),
                      what=str(held["what"]), command=str(held.get("command", "")))
    return None


def _describe(held: dict[str, Any]) -> str:
    holder = _holder(held)
    return holder.describe() if holder else "another driver (its lease names no holder)"


@contextlib.contextmanager
def object_store_lease(store: Store, name: str, what: str, *, timeout: float | None = None,
                       on_wait: Callable[[str], None] | None = None) -> Iterator[Holder | None]:
    """Hold the lease ``name`` on an object store for the block; yields the holder we waited for, if any.

    ``timeout``: None waits as long as it takes, 0 fails at once, otherwise seconds; ``on_wait`` gets
    one line naming the holder when the lease is busy (default: a log warning).
    """
    lease = _Lease(store, name, what, lease_ttl())
    taken, held = lease.try_take()
    waited_for = held  # the live holder we wait for, or the dead one whose lease we took over
    if not taken:
        deadline = None if timeout is None else time.monotonic() + timeout
        line = f"curate: waiting for {_describe(held or {})}, which holds the lease {lease.key}"
        if timeout is None or timeout > 0:
            (on_wait or log.warning)(line)
        while not taken:
            if deadline is not None and time.monotonic() >= deadline:
                raise LockedError(
                    f"cannot {what} now: another driver holds the lease {lease.key!r} — {_describe(held or {})}, "
                    f"until {(held or {}).get('expires_at', '?')} unless it renews. Wait for it to finish and "
                    f"re-run (work it finished is skipped); a driver that died leaves a lease that expires after "
                    f"{lease.ttl:g} s ({TTL_ENV}). Set {TIMEOUT_ENV}=<seconds> to wait.")
            time.sleep(_POLL_S)
            taken, held = lease.try_take()
    stop = threading.Event()

    def keep() -> None:
        while not stop.wait(lease.ttl / 3):
            if not lease.renew():
                log.warning("curate: the lease %s was taken over by another driver while %s ran", lease.key, what)
                return

    renewer = threading.Thread(target=keep, name=f"lease-{name}", daemon=True)
    renewer.start()
    try:
        yield _holder(waited_for)
    finally:
        stop.set()
        renewer.join()
        lease.release()
