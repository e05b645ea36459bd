"""Content hashes of files, for fingerprints: streamed, and cached while the file is unchanged."""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file; recomputed only when (path, mtime, size) changes.

    Model files can be ~1 GB and fingerprints are asked for on every plan.
    """
    resolved = Path(path).resolve()
    st = resolved.stat()
    return _sha256_cached(str(resolved), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=128)
def _sha256_cached(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
