"""LaTeX sources and metamath databases."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from tools.corpus.model import Item, Package, Raw, Source
from tools.corpus.text import read_utf8


def _braced(s: str, start: int) -> str:
    """Text up to the brace that closes the group opened just before `start`."""
    depth = 1
    for i in range(start, min(len(s), start + 500)):
        depth += {"{": 1, "}": -1}.get(s[i], 0)
        if depth == 0:
            return s[start:i]
    return s[start:start + 80]


def ex_tex(src: Source, pkg: Package, files: list) -> Iterator[Item]:
    """Plain TeX manuals: one document per \\section / \\subsec, `%` comment lines dropped."""
    for rel in files:
        text = read_utf8(pkg.root / rel) or ""
        text = "\n".join(ln for ln in text.split("\n") if not ln.lstrip().startswith("%"))
        parts = re.split(r"\n(?=\\(?:chapter|section|subsec)\b)", text)
        for i, part in enumerate(parts):
            m = re.match(r"\\(?:chapter|section|subsec)\{", part)
            title = _braced(part, m.end()) if m else Path(rel).stem
            yield Raw(f"{Path(rel).stem}/{i:04d}", part, rel, title, anchor=str(i))


def ex_metamath(src: Source, pkg: Package, files: list) -> Iterator[Item]:
    """Metamath databases: compressed proofs removed, one document per section banner."""
    for rel in files:
        s = (pkg.root / rel).read_text("utf-8", errors="replace")
        s = re.sub(r"\$=.*?\$\.", "$= ... $.", s, flags=re.S)
        parts = re.split(r"\n(?=[ \t]*\$\([ \t]*\n[ \t]*(?:#\*#\*|=-=-|-\.-\.|\.-\.-))", s)
        for i, part in enumerate(parts):
            lines = [ln.strip() for ln in part.split("\n")[:6]]
            title = next((ln for ln in lines[2:] if ln and not re.match(r"^[#*=\-.$( ]+$", ln)), None)
            yield Raw(f"{Path(rel).stem}/{i:04d}", part, rel, title, anchor=str(i))
