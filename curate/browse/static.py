"""``curate report``: the browser's pages written once as a static site (HTML and PNG files, no server).

The pages are the browse app's own, fetched in-process (Starlette's test client drives the real app), so a
report and ``curate browse`` never disagree. Every link is rewritten to a relative file name. What a static
site cannot hold in full (any filter, any SQL, every page of every list, every document) is cut to a stated
size: the first page of each list (the pool, each corpus x domain, each score sorted both ways), the top
``docs_per_list`` documents of each of those lists up to ``max_docs`` in all, and one histogram per score. A
link to anything else goes to ``not-in-report.html``, which says how to see it with ``curate browse``.
"""

from __future__ import annotations

import hashlib
import html
import posixpath
import re
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from curate.browse.pages import render
from curate.store import Store

MISSING_PAGE = "not-in-report.html"
REPORT_FOLDER = "report"  # where a store keeps its own report (`curate report` without --out, deployments)
STATE_FILE = "state.json"  # in REPORT_FOLDER: the store state the report was written from
# href="..." / src="..." in the app's own HTML (Jinja2 escapes the values, so they never hold a raw quote)
_LINK = re.compile(r'(href|src)="([^"]*)"')
_SAFE_NAME = re.compile(r"^[A-Za-z0-9._=~-]{1,80}$")


@dataclass
class ReportSummary:
    """What one ``curate report`` wrote."""

    out: str
    pages: int = 0
    documents: int = 0
    pictures: int = 0
    bytes: int = 0
    seconds: float = 0.0
    left_out: int = 0  # links that lead to MISSING_PAGE (views a static site does not hold)
    unchanged: bool = False  # nothing in the store changed since the report there was written: not rewritten
    files: list[str] = field(default_factory=list)

    def line(self) -> str:
        if self.unchanged:
            return f"report at {self.out} is current (nothing in the store changed since it was written)"
        return (f"wrote {self.pages} pages ({self.documents} documents) and {self.pictures} pictures, "
                f"{self.bytes / 1e6:.1f} MB, to {self.out} in {self.seconds:.1f} s")


def normalize(url: str) -> tuple[str, str]:
    """(address without its fragment, with its query's empty values dropped and keys sorted; fragment)."""
    parts = urlsplit(url)
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query) if v != ""))
    return parts.path + (f"?{query}" if query else ""), parts.fragment


def _slug(text: str) -> str:
    """A file-name-safe, collision-free form of ``text`` (kept as it is when it already is one)."""
    if _SAFE_NAME.match(text) and text not in (".", ".."):
        return text
    readable = re.sub(r"[^A-Za-z0-9._=~-]+", "-", text).strip("-.")[:60]
    return f"{readable}-{hashlib.sha1(text.encode()).hexdigest()[:10]}"


def file_for(address: str) -> str:
    """The report file (relative to its root) that holds the app's ``address`` (normalized, no fragment)."""
    parts = urlsplit(address)
    path, query = parts.path, "~".join(f"{k}={v}" for k, v in parse_qsl(parts.query))  # sort=x~order=asc
    if path == "/":
        return "index.html"
    if path.startswith("/doc/"):
        return f"doc/{_slug(unquote(path[len('/doc/'):]))}.html"
    if path.startswith("/picture/"):  # store paths of PNGs curate drew (the app refuses anything else)
        return "pictures/" + "/".join(_slug(p) for p in unquote(path[len("/picture/"):]).split("/"))
    if path.startswith("/plot/"):
        stem = path[len("/plot/"):].removesuffix(".png")
        return f"plots/{stem}-{_slug(query)}.png" if query else f"plots/{stem}.png"
    name = _slug(path.strip("/"))
    return f"{name}/{_slug(query)}.html" if query else f"{name}.html"


def seeds(numeric: list[str]) -> list[str]:
    """The addresses a report starts from: every page of the navigation, and per score its histogram and the
    documents sorted by it, highest and lowest first."""
    out = ["/", "/documents", "/histograms", "/quarantine", "/mixtures", "/models", "/mates", "/experiments"]
    for col in numeric:
        q = urlencode({"column": col})
        out += [f"/histograms?{q}", normalize(f"/documents?{urlencode({'sort': col})}")[0],
                normalize(f"/documents?{urlencode({'sort': col, 'order': 'asc'})}")[0]]
    return [normalize(u)[0] for u in out]


class _Crawl:
    """Which addresses the report holds, decided as pages are fetched (breadth first from the seeds)."""

    def __init__(self, start: list[str], max_docs: int, docs_per_list: int) -> None:
        self.queue: deque[str] = deque(dict.fromkeys(start))
        self.held: set[str] = set(self.queue)
        self.max_docs, self.docs_per_list = max_docs, docs_per_list
        self.docs = 0
        self.left_out = 0

    def admit(self, address: str, page: str, docs_here: int) -> bool:
        """Whether ``address``, linked from ``page``, goes into the report (and is queued if new)."""
        if address in self.held:
            return True
        path, _, query = address.partition("?")
        params = dict(parse_qsl(query))
        if path.startswith("/doc/"):
            from_list = page.startswith("/documents")
            if self.docs >= self.max_docs or (from_list and docs_here >= self.docs_per_list):
                return False
            self.docs += 1
        elif params.get("page", "0") != "0" or params.get("page_no", "0") != "0":
            return False  # later pages of a list: `curate browse` pages through them
        elif path == "/documents" and set(params) - {"domain", "corpus", "sort", "order"}:
            return False  # score ranges and SQL are the live browser's
        self.held.add(address)
        self.queue.append(address)
        return True


def _rewrite(body: str, page: str, crawl: _Crawl) -> str:
    """``body`` with every in-app link pointing at its report file (relative to ``page``'s file)."""
    here = posixpath.dirname(file_for(page))
    docs_here = 0

    def swap(m: re.Match[str]) -> str:
        nonlocal docs_here
        attr, raw = m.group(1), html.unescape(m.group(2))
        if not raw.startswith("/") or raw.startswith("//"):
            return m.group(0)  # in-page anchors and outside addresses stay as they are
        address, fragment = normalize(raw)
        if crawl.admit(address, page, docs_here):
            if address.startswith("/doc/") and page.startswith("/documents"):
                docs_here += 1
            target = file_for(address)
        else:
            crawl.left_out += 1
            target = MISSING_PAGE
            fragment = ""
        rel = posixpath.relpath(target, here or ".")
        return f'{attr}="{html.escape(rel + (f"#{fragment}" if fragment else ""))}"'

    return _LINK.sub(swap, body)


def pages(store: Store | str, *, max_docs: int = 300, docs_per_list: int = 5,
          progress: Callable[[int, int], None] | None = None,
          summary: ReportSummary | None = None) -> Iterator[tuple[str, bytes]]:
    """Every (report file, content) of ``store``'s report, in crawl order; ``progress(done, known)`` after
    each; ``summary.left_out`` gets the number of links that lead to :data:`MISSING_PAGE`."""
    from starlette.testclient import TestClient

    from curate.browse.app import make_app

    st = Store.of(store)
    app = make_app(st, static=True)
    with TestClient(app) as client:
        crawl = _Crawl(seeds(app.state.browser.numeric), max_docs, docs_per_list)
        done = 0
        while crawl.queue:
            address = crawl.queue.popleft()
            resp = client.get(address)
            done += 1
            if progress:
                progress(done, done + len(crawl.queue))
            if resp.status_code != 200:
                # a histogram of a score with no finite values, a picture gone since the page listed it
                yield file_for(address), resp.content if not address.endswith(".png") else b""
                continue
            if resp.headers.get("content-type", "").startswith("text/html"):
                yield file_for(address), _rewrite(resp.text, address, crawl).encode()
            else:
                yield file_for(address), resp.content
        missing = render("not_in_report.html", store=st.uri, path="", ms=0.0, static=True)
        yield MISSING_PAGE, _rewrite(missing, "/" + MISSING_PAGE.removesuffix(".html"), crawl).encode()
    app.state.browser.close()
    if summary is not None:
        summary.left_out = crawl.left_out


def write_report(store: Store | str, out: str | Path, *, max_docs: int = 300, docs_per_list: int = 5,
                 progress: bool | None = None) -> ReportSummary:
    """Write ``store``'s static report to the local folder ``out`` (replacing a previous report there whole:
    it is written beside it and swapped in, so a reader never sees half of one)."""
    st = Store.of(store)
    dest = Path(out)
    dest.parent.mkdir(parents=True, exist_ok=True)
    summary = ReportSummary(out=str(dest))
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        def put(rel: str, data: bytes) -> None:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(data)

        _write(st, put, summary, max_docs, docs_per_list, progress)
        old = dest.with_name(f".{dest.name}-old")
        if dest.exists():
            shutil.rmtree(old, ignore_errors=True)
            dest.rename(old)
        tmp.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary


def write_report_to_store(store: Store | str, folder: str = REPORT_FOLDER, *, max_docs: int = 300,
                          docs_per_list: int = 5, progress: bool | None = None,
                          only_if_changed: bool = False) -> ReportSummary:
    """Write ``store``'s report into the store itself under ``folder`` (local or object store: what a
    scheduled deployment does after each run); files of an earlier report that this one no longer has
    are deleted after the new files are written. ``only_if_changed``: leave the report as it is when no file
    of the store outside it changed since it was written (``summary.unchanged``)."""
    st = Store.of(store)
    summary = ReportSummary(out=st.uri_of(folder))
    state = store_state(st, (folder, "locks"))
    if only_if_changed and (st.read_json(f"{folder}/{STATE_FILE}") or {}).get("state") == state:
        summary.unchanged = True
        return summary
    before = set(_files_under(st, folder))
    _write(st, lambda rel, data: st.write_bytes(f"{folder}/{rel}", data), summary, max_docs, docs_per_list, progress)
    for stale in before - {f"{folder}/{rel}" for rel in summary.files} - {f"{folder}/{STATE_FILE}"}:
        st.delete(stale)
    st.write_json(f"{folder}/{STATE_FILE}", {"state": state, "pages": summary.pages, "seconds": summary.seconds})
    return summary


def store_state(st: Store, skip: tuple[str, ...] = (REPORT_FOLDER, "locks")) -> str:
    """A fingerprint of every file in the store but those under ``skip`` (path, size, modification time):
    what a report was written from (locks come and go with every run and change nothing a report shows)."""
    digest = hashlib.sha256()
    root = len(st.path("").rstrip("/")) + 1
    for info in sorted(_infos(st, ""), key=lambda i: i.path):
        rel = info.path[root:]
        if not rel.startswith(tuple(f"{s}/" for s in skip)):
            digest.update(f"{rel}|{info.size}|{info.mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def _write(st: Store, put: Callable[[str, bytes], None], summary: ReportSummary, max_docs: int, docs_per_list: int,
           progress: bool | None) -> None:
    from curate.progress import progress as progress_bar

    started = time.perf_counter()
    with progress_bar("report", unit="pages", enabled=progress) as advance:
        for rel, data in pages(st, max_docs=max_docs, docs_per_list=docs_per_list, summary=summary,
                               progress=lambda _done, known: advance(1, total=known)):
            put(rel, data)
            _count(summary, rel, data)
    summary.seconds = time.perf_counter() - started


def _count(summary: ReportSummary, rel: str, data: bytes) -> None:
    summary.files.append(rel)
    summary.bytes += len(data)
    if rel.endswith(".png"):
        summary.pictures += 1
    else:
        summary.pages += 1
        summary.documents += rel.startswith("doc/")


def _infos(st: Store, folder: str) -> list:
    """Every file (not folder) under the store's ``folder``, as pyarrow FileInfo."""
    from pyarrow import fs

    selector = fs.FileSelector(st.path(folder).rstrip("/"), recursive=True, allow_not_found=True)
    return [i for i in st.fs.get_file_info(selector) if i.type == fs.FileType.File]


def _files_under(st: Store, folder: str) -> Iterator[str]:
    root = st.path(folder).rstrip("/") + "/"
    for info in _infos(st, folder):
        if info.path.startswith(root):
            yield f"{folder}/{info.path[len(root):]}"
