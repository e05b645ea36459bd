"""reStructuredText, POD and HTML documents."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Iterator

from tools.corpus.model import Drop, Item, Package, Raw, Source
from tools.corpus.text import html_to_text, read_utf8, slug

RST_ROLE_RE = re.compile(r":[\w:+\-]+:`~?!?([^`<]*?)(?:\s*<[^`>]*>)?`")
RST_DROP_RE = re.compile(r"^\.\. (index|_[^:]*|highlight|sectionauthor|moduleauthor|toctree|only|include|"
                         r"testsetup|testcleanup|currentmodule|raw)(::|:)")


def clean_rst(text: str) -> str:
    text = RST_ROLE_RE.sub(lambda m: m.group(1).strip() or m.group(0), text)
    out, skipping = [], False
    for line in text.split("\n"):
        if RST_DROP_RE.match(line):
            skipping = True
            continue
        if skipping and (line.startswith(" ") or not line.strip()):
            if not line.strip():
                skipping = False
            continue
        skipping = False
        out.append(line)
    return "\n".join(out)


def ex_rst(src: Source, pkg: Package, files: list) -> Iterator[Item]:
    """reST sources (`*.rst.txt`): one page per document, roles and index directives stripped."""
    strip = src.opts.get("strip_prefix", "")
    for rel in files:
        text = read_utf8(pkg.root / rel)
        if text is None:
            yield Drop("non-utf8-or-binary")
            continue
        key = rel[len(strip):].replace(".rst.txt", "")
        m = re.search(r"^(\S.*)\n[=\-*#~^]{3,}\s*$", text, re.M)
        yield Raw(key, clean_rst(text), rel, clean_rst(m.group(1)).strip() if m else key)


def ex_rst_faq(src: Source, pkg: Package, files: list) -> Iterator[Item]:
    """reST FAQ pages: one document per question (a title underlined with `---`)."""
    for rel in files:
        text = read_utf8(pkg.root / rel) or ""
        page = Path(rel).name.replace(".rst.txt", "")
        parts = re.split(r"\n(?=[^\n]+\n-{3,}[ \t]*\n)", text)
        for i, part in enumerate(parts[1:]):
            title = part.split("\n", 1)[0].strip()
            body = re.split(r"\n(?=[^\n]+\n={3,}[ \t]*\n)", part)[0]  # stop at the next `===` section
            yield Raw(f"{page}/{i:03d}", clean_rst(body), rel, title, anchor=slug(title))


POD_CODE_RE = re.compile(r"[BCIFSLXEZ]<([^<>]*)>")
POD_CODE2_RE = re.compile(r"[BCIFSLXEZ]<<+\s+(.*?)\s+>>+", re.S)
POD_ESC = {"lt": "<", "gt": ">", "verbar": "|", "sol": "/", "quot": '"', "amp": "&", "apos": "'"}


def clean_pod(text: str) -> str:
    text = POD_CODE2_RE.sub(lambda m: m.group(1), text)

    def code(m):
        inner = m.group(1)
        tag = m.group(0)[0]
        if tag == "E":
            return POD_ESC.get(inner, html.unescape(f"&{inner};") if not inner.isdigit() else chr(int(inner)))
        if tag in "XZ":
            return ""
        if tag == "L":
            inner = inner.split("|", 1)[0] if "|" in inner else inner.replace('"', "")
        return inner

    for _ in range(4):
        new = POD_CODE_RE.sub(code, text)
        if new == text:
            break
        text = new
    out = []
    for line in text.split("\n"):
        if re.match(r"=(over|back|cut|pod|encoding|for|begin|end)\b", line):
            continue
        m = re.match(r"=head\d\s+(.*)", line)
        if m:
            out.append(m.group(1))
            continue
        m = re.match(r"=item\s*(.*)", line)
        if m:
            out.append("* " + m.group(1) if m.group(1) not in ("*", "") else "*")
            continue
        out.append(line)
    return "\n".join(out)


def ex_pod(src: Source, pkg: Package, files: list) -> Iterator[Item]:
    """POD files: one file per document with formatting codes stripped."""
    for rel in files:
        text = read_utf8(pkg.root / rel)
        if text is None:
            yield Drop("non-utf8-or-binary")
            continue
        m = re.search(r"^=head1 NAME\s*\n\s*\n(.+)", text, re.M)
        yield Raw(Path(rel).stem, clean_pod(text), rel, clean_pod(m.group(1)).strip() if m else Path(rel).stem)


def ex_pod_faq(src: Source, pkg: Package, files: list) -> Iterator[Item]:
    """perlfaq POD: one document per `=head2` question."""
    for rel in files:
        text = read_utf8(pkg.root / rel) or ""
        page = Path(rel).stem
        for i, part in enumerate(re.split(r"\n(?==head2 )", text)[1:]):
            part = re.split(r"\n(?==head1 )", part)[0]
            title = clean_pod(part.split("\n", 1)[0][7:]).strip()
            yield Raw(f"{page}/{i:03d}", clean_pod(part), rel, title, anchor=slug(title))


def ex_html(src: Source, pkg: Package, files: list) -> Iterator[Item]:
    """HTML pages: one page per document; navigation blocks (by class) removed."""
    skip = src.opts.get("skip_classes", ())
    for rel in files:
        raw = read_utf8(pkg.root / rel)
        if raw is None:
            yield Drop("non-utf8-or-binary")
            continue
        m = re.search(r"<title>(.*?)</title>", raw, re.S | re.I)
        title = html.unescape(re.sub(r"\s+", " ", m.group(1))).strip() if m else None
        yield Raw(Path(rel).stem, html_to_text(raw, skip), rel, title)
