"""man pages (rendered with groff) and GNU info manuals."""

from __future__ import annotations

import collections
import concurrent.futures
import gzip
import os
import re
import subprocess
from pathlib import Path
from typing import Iterator, Optional

from tools.corpus.fetch import JOBS
from tools.corpus.model import Drop, Item, Package, Raw, Source
from tools.corpus.text import slug


def _render_man(path: Path) -> Optional[str]:
    data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    if re.fullmatch(rb"\s*(\.\\\".*\n)*\s*\.so\s+\S+\s*", data):
        return None   # `.so` alias stub
    proc = subprocess.run(
        ["groff", "-k", "-man", "-Tutf8", "-P", "-cbou", "-rHY=0", "-dAD=l", "-rLL=78n"],
        input=data, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env={**os.environ, "LC_ALL": "C.UTF-8"},
    )
    out = proc.stdout.decode("utf-8", "replace")
    lines = []
    for line in out.split("\n"):
        indent = len(line) - len(line.lstrip(" "))
        body = re.sub(r"(?<=\S) {2,}", " ", line.strip())
        lines.append(" " * max(0, indent - 7) + body if body else "")
    return "\n".join(lines)


def ex_man(src: Source, pkg: Package, files: list) -> Iterator[Item]:
    """troff man pages rendered with groff (UTF-8, no overstrike); `.so` stubs and symlinks skipped."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=JOBS) as pool:
        rendered = list(pool.map(lambda rel: _render_man(pkg.root / rel), files))
    for rel, text in zip(files, rendered):
        if text is None:
            yield Drop("so-stub")
            continue
        name = Path(rel).name[:-3] if rel.endswith(".gz") else Path(rel).name
        section = Path(rel).parent.name
        yield Raw(f"{section}/{name}", text, rel, name)


def ex_info(src: Source, pkg: Package, files: list) -> Iterator[Item]:
    """GNU info: parts concatenated in order, one node per document (index nodes skipped)."""
    def order(rel):
        m = re.search(r"\.info-(\d+)\.gz$", rel)
        return int(m.group(1)) if m else 0
    seen = collections.Counter()
    for rel in sorted(files, key=order):
        text = gzip.decompress((pkg.root / rel).read_bytes()).decode("utf-8", "replace")
        for chunk in text.split("\x1f"):
            chunk = chunk.strip("\n")
            if not chunk.startswith("File:"):
                continue
            header, _, body = chunk.partition("\n")
            m = re.search(r"Node: ([^,\n]+)", header)
            node = m.group(1).strip() if m else header
            if "Index" in node:
                yield Drop("info-index-node")
                continue
            seen[slug(node)] += 1
            key = slug(node) + (f"-{seen[slug(node)] - 1}" if seen[slug(node)] > 1 else "")
            yield Raw(key, body, rel, node, anchor=node)
