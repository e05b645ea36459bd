"""Plain text files, one document each."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from tools.corpus.model import Drop, Item, Package, Raw, Source
from tools.corpus.text import read_utf8


def ex_plain(src: Source, pkg: Package, files: list) -> Iterator[Item]:
    """One plain-text file per document; title derived from the file name."""
    for rel in files:
        text = read_utf8(pkg.root / rel)
        if text is None:
            yield Drop("non-utf8-or-binary")
            continue
        stem = Path(rel).name.rsplit(".", 1)[0]
        title = src.opts.get("title", lambda s: s.replace("_", " ").title())(stem)
        yield Raw(stem, text, rel, title)
