"""Mail archives: the best body part of each message."""

from __future__ import annotations

import email
import re
from email import policy
from pathlib import Path
from typing import Iterator, Optional

from tools.corpus.model import Drop, Item, Package, Raw, Source
from tools.corpus.text import ADULT_RE, html_to_text


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
