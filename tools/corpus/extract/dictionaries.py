"""dictd dictionaries (GCIDE, FOLDOC, Jargon) and WordNet."""

from __future__ import annotations

import collections
import gzip
import re
from typing import Iterator

from tools.corpus.model import Item, Package, Raw, Source
from tools.corpus.text import slug

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"  # dictd's offsets


def _dictd_num(s: str) -> int:
    n = 0
    for ch in s:
        n = n * 64 + _B64.index(ch)
    return n


def _dictd_entries(pkg: Package, files: list):
    index = next(f for f in files if f.endswith(".index"))
    dz = next(f for f in files if f.endswith(".dict.dz"))
    data = gzip.open(pkg.root / dz).read()
    seen = set()
    with open(pkg.root / index, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or parts[0].startswith(("00-database", "00database")):
                continue
            off, ln = _dictd_num(parts[1]), _dictd_num(parts[2])
            if (off, ln) in seen:
                continue
            seen.add((off, ln))
            yield dz, parts[0], data[off:off + ln].decode("utf-8", "replace")


def ex_dictd(src: Source, pkg: Package, files: list) -> Iterator[Item]:
    """dictd database: one entry per document, or `group` consecutive entries per document."""
    group = src.opts.get("group", 1)
    counts = collections.Counter()
    batch = []
    for dz, head, body in _dictd_entries(pkg, files):
        body = re.sub(r"\n[ \t]+\n", "\n\n", body).strip()
        if group == 1:
            key = slug(head)
            n = counts[key]
            counts[key] += 1
            yield Raw(f"{key}-{n}", body, dz, head, anchor=head)
            continue
        batch.append((head, body))
        if len(batch) == group:
            yield _dict_group(batch, dz)
            batch = []
    if batch:
        yield _dict_group(batch, dz)


def _dict_group(batch, dz) -> Raw:
    first, last = batch[0][0], batch[-1][0]
    text = "\n\n".join(body for _, body in batch)
    return Raw(f"{slug(first)}--{slug(last)}", text, dz, f"{first} - {last}", anchor=first)


def ex_wordnet(src: Source, pkg: Package, files: list) -> Iterator[Item]:
    """WordNet data.* files: `lemma, lemma: gloss` lines, grouped `group` synsets per document."""
    group = src.opts.get("group", 25)
    for rel in files:
        pos = rel.rsplit(".", 1)[1]
        glosses = []
        with open(pkg.root / rel, encoding="latin-1") as fh:
            for line in fh:
                if line.startswith("  ") or " | " not in line:
                    continue
                head, gloss = line.rstrip("\n").split(" | ", 1)
                f = head.split()
                words = [f[4 + 2 * i].replace("_", " ") for i in range(int(f[3], 16))]
                glosses.append(f"{', '.join(words)} ({pos}): {gloss.strip()}")
        for i in range(0, len(glosses), group):
            chunk = glosses[i:i + group]
            yield Raw(f"{pos}-{i // group:05d}", "\n".join(chunk), rel, f"WordNet {pos} {i // group}",
                      anchor=str(i // group))
