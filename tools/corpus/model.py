"""Knobs and the data model of the corpus build: documents, drops, packages, sources."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Iterable, Optional, Union

# Global knobs
# --------------------------------------------------------------------------

DOMAINS = ("web", "forum", "encyclopedic", "code", "math", "books", "docs", "multilingual")
HELDOUT_PER_DOMAIN = 250
TRAIN_MAX_PER_DOMAIN = 3750
MIN_CHARS = 200            # drop documents shorter than this (after grouping)
SPLIT_OVER = 20_000        # split documents longer than this ...
PIECE_CHARS = 8_000        # ... into pieces of at most this many characters
ROW_GROUP = 2_000
ZSTD_LEVEL = 19

# --------------------------------------------------------------------------
# Data model
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Raw:
    """One extracted document before generic cleaning."""
    key: str                      # unique within the source, becomes "<source>/<key>"
    text: str
    path: str                     # path inside the package
    title: Optional[str] = None
    anchor: Optional[str] = None  # fragment for the url column


@dataclasses.dataclass
class Drop:
    """Emitted by an extractor for an item it rejected (counted per rule)."""
    rule: str


Item = Union[Raw, Drop]


@dataclasses.dataclass
class Package:
    registry: str                 # "deb" | "npm" | "pypi"
    name: str
    version: str = ""
    file: Optional[Path] = None   # the downloaded archive
    root: Optional[Path] = None   # where it was unpacked

    @property
    def url_prefix(self) -> str:
        sep = {"deb": "=", "npm": "@", "pypi": "=="}[self.registry]
        return f"{self.registry}:{self.name}{sep}{self.version}"


@dataclasses.dataclass
class Source:
    name: str                         # short source name (id prefix and `source` column)
    registry: str
    package: str
    version: Optional[str]            # exact pin; None = whatever apt-get download gives
    paths: tuple                      # globs inside the package (`**` = any folders)
    domain: str
    license: str
    extractor: Callable[["Source", Package, list], Iterable[Item]]
    cleaning: str                     # human description for SOURCES.md
    cap: Optional[int] = None         # max documents (pieces) kept, sampled by hash of id
    max_pieces: Optional[int] = None  # keep only the first N pieces of a split document
    piece_chars: int = 8_000          # piece size when a document over SPLIT_OVER is split (<= PIECE_CHARS)
    exclude: tuple = ()               # globs to skip
    opts: dict = dataclasses.field(default_factory=dict)


# --------------------------------------------------------------------------
