"""Helpers for tests that start real servers and clusters as subprocesses."""

from __future__ import annotations

import socket
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, n: int = 4000) -> str:
    """The end of a subprocess log, for failure messages."""
    return path.read_text(errors="replace")[-n:] if path.exists() else f"({path} missing)"
