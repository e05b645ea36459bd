"""Fault-injection points for crash tests; inert unless ``CURATE_FAULT`` is set.

``CURATE_FAULT=<point>:<n>`` SIGKILLs the process the n-th time ``point`` is
reached, so tests can crash a real run at an exact place (between a shard's
rename and its manifest entry, say) and check that the rerun loses nothing.
With ``CURATE_FAULT_ONCE=<path>`` only the first process to get there dies (it
creates ``path`` first): a retried task then gets through, as after a real crash.
"""

from __future__ import annotations

import os
import signal

_hits: dict[str, int] = {}


def point(name: str) -> None:
    spec = os.environ.get("CURATE_FAULT")
    if not spec:
        return
    target, _, n = spec.partition(":")
    if target != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= int(n or 1):
        once = os.environ.get("CURATE_FAULT_ONCE")
        if once:
            try:
                os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return  # another process died here already
        os.kill(os.getpid(), signal.SIGKILL)
