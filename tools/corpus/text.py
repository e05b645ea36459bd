"""Text helpers: cleaning, PII masking, registry-host detection, splitting, HTML to text."""

from __future__ import annotations

import collections
import gzip
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Optional

from tools.corpus.model import PIECE_CHARS, SPLIT_OVER

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
