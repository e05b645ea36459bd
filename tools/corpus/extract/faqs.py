"""Fortune cookies and the Debian FAQ."""

from __future__ import annotations

import re
from typing import Iterator

from tools.corpus.model import Drop, Item, Package, Raw, Source
from tools.corpus.text import ANSI_RE, read_utf8


def _fortune_cookies(text: str) -> list:
    out = []
    for chunk in re.split(r"^%\s*$", text, flags=re.M):
        chunk = ANSI_RE.sub("", chunk).strip("\n")
        if chunk.strip():
            out.append(chunk)
    return out


def ex_fortunes(src: Source, pkg: Package, files: list) -> Iterator[Item]:
    """fortune files: `%`-separated cookies merged into documents of >= `min_chars` characters."""
    min_chars = src.opts.get("min_chars", 1200)
    for rel in files:
        p = pkg.root / rel
        if p.stat().st_size == 0:
            continue
        text = read_utf8(p)
        if text is None:
            yield Drop("non-utf8-or-binary")
            continue
        topic = rel.split("/fortunes/", 1)[1]
        cookies, batch, n = _fortune_cookies(text), [], 0
        for i, c in enumerate(cookies):
            batch.append(c)
            if sum(len(b) for b in batch) >= min_chars or i == len(cookies) - 1:
                yield Raw(f"{topic}/{n}", "\n\n%\n\n".join(batch), rel, topic, anchor=str(n))
                batch, n = [], n + 1


def ex_debian_faq(src: Source, pkg: Package, files: list) -> Iterator[Item]:
    """Debian FAQ plain text: one document per numbered question (`N.M. Title` at column 0)."""
    text = read_utf8(pkg.root / files[0]) or ""
    parts = re.split(r"\n(?=\d+\.\d+\.[ \xa0]\S)", text)
    for part in parts[1:]:
        m = re.match(r"(\d+\.\d+)\.[ \xa0](.*)", part)
        body = re.split(r"\n(?=\d+\.[ \xa0]\S)", part)[0]   # cut off a following chapter heading
        yield Raw(m.group(1), body, files[0], m.group(2).strip(), anchor=m.group(1))
