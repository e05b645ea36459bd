"""Books: plays and novels by section, the KJV by book, Austen from R data."""

from __future__ import annotations

import collections
import json
import re
import struct
import zlib
from pathlib import Path
from typing import Iterator

from tools.corpus.model import Drop, Item, Package, Raw, Source
from tools.corpus.text import read_utf8, slug

SCENE_RE = re.compile(r"^(?:ACT [IVXL]+\.?.*|Act [IVXL]+\.?.*|SCENE [IVXL]+\..*|Scene [IVXL]+\..*|"
                      r"ACT [IVXL]+\. SCENE [IVXL]+\..*|PROLOGUE\.?|Prologue\.?|EPILOGUE\.?|Epilogue\.?|"
                      r"BOOK [IVXL]+\.?.*|[IVXLC]+\.)$")


def ex_book_sections(src: Source, pkg: Package, files: list) -> Iterator[Item]:
    """Play / long poem texts: split per act/scene (Shakespeare) or book (Milton); headings kept."""
    for rel in files:
        text = read_utf8(pkg.root / rel)
        if text is None:
            yield Drop("non-utf8-or-binary")
            continue
        work = Path(rel).name.replace("_gut.txt", "")
        title = text.strip().split("\n", 1)[0].strip()
        lines = text.split("\n")
        cuts = []
        for i, ln in enumerate(lines):
            if not SCENE_RE.match(ln.strip()):
                continue
            prev = lines[i - 1].strip() if i else ""
            if not prev:
                cuts.append(i)
            elif ln.strip().startswith("BOOK ") and prev.isupper():  # "PARADISE LOST" / "BOOK II."
                cuts.append(i - 1)
        # a bare act line directly followed by a scene line belongs to that scene
        cuts = [c for j, c in enumerate(cuts) if not (j + 1 < len(cuts) and cuts[j + 1] - c <= 3)]
        bounds = [0] + cuts + [len(lines)]
        for j in range(len(bounds) - 1):
            chunk = "\n".join(lines[bounds[j]:bounds[j + 1]])
            head = lines[bounds[j]].strip() if j else "front matter"
            yield Raw(f"{work}/{j:03d}", chunk, rel, f"{title} - {head}", anchor=str(j))


def ex_kjv(src: Source, pkg: Package, files: list) -> Iterator[Item]:
    """KJV JSON lines: verses grouped by (book, chapter)."""
    chapters = collections.OrderedDict()
    for line in open(pkg.root / files[0], encoding="utf-8"):
        if line.strip():
            v = json.loads(line)
            chapters.setdefault((v["book"], int(v["chapter"])), []).append(f"{v['verse']} {v['text'].strip()}")
    for (book, ch), verses in chapters.items():
        yield Raw(f"{slug(book)}/{ch}", f"{book} {ch}\n\n" + "\n".join(verses), files[0], f"{book} {ch}",
                  anchor=f"{book}-{ch}")


def _rdb_character_vectors(path: Path):
    b = path.read_bytes()
    pos = 0
    while pos < len(b):
        d = zlib.decompressobj()
        buf = d.decompress(b[pos + 4:])
        pos = len(b) - len(d.unused_data)
        i = 2
        ver = struct.unpack(">i", buf[i:i + 4])[0]
        i += 12
        if ver == 3:
            i += 4 + struct.unpack(">i", buf[i:i + 4])[0]
        out = []
        while i < len(buf) - 8:
            flags = struct.unpack(">I", buf[i:i + 4])[0]
            if flags & 0xFF == 9:
                ln = struct.unpack(">i", buf[i + 4:i + 8])[0]
                if ln >= 0:
                    out.append(buf[i + 8:i + 8 + ln].decode("utf-8", "replace"))
                    i += 8 + ln
                else:
                    i += 8
                continue
            i += 4
        yield out


def ex_austen(src: Source, pkg: Package, files: list) -> Iterator[Item]:
    """janeaustenr R data: one novel per block, split per CHAPTER, hard-wrapped lines re-flowed."""
    for lines in _rdb_character_vectors(pkg.root / files[0]):
        novel = next((ln.strip() for ln in lines if ln.strip()), "")
        if len(lines) < 1000 or not novel:
            continue
        paras, cur = [], []
        for ln in lines + [""]:
            if ln.strip():
                cur.append(ln.strip())
            elif cur:
                paras.append(" ".join(cur))
                cur = []
        chapters, cur = [], []
        for p in paras:
            if re.match(r"^(CHAPTER|Chapter) [0-9IVXLC]+\.?$", p) and cur:
                chapters.append(cur)
                cur = []
            cur.append(p)
        chapters.append(cur)
        for i, ch in enumerate(chapters):
            yield Raw(f"{slug(novel.title())}/{i:03d}", "\n\n".join(ch), files[0], f"{novel.title()} - {ch[0]}",
                      anchor=f"{slug(novel)}-{i}")


# --------------------------------------------------------------------------
