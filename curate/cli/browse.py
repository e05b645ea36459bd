"""``curate browse`` serves a store's documents, scores, quarantine and models as local web pages;
``curate report`` writes the same pages once as a static site."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer

from curate.cli.common import StoreOpt, console, err, friendly
from curate.errors import CurateError

LOOPBACK = "127.0.0.1"


@friendly
def browse(
    store: StoreOpt = "store",
    port: Annotated[int, typer.Option(help="TCP port to serve on.")] = 8765,
    host: Annotated[str, typer.Option(help="Address to listen on. The default serves this machine only; "
                                           "another address shows the store's text to whoever can reach it.")] = LOOPBACK,
) -> None:
    """Browse a store in your web browser, read-only: corpora and domains, quarantined records, documents
    filtered by domain, corpus, score ranges or a SQL WHERE over doc_features (as read-only as
    [cyan]curate sql[/]), sorted by any score, each with its full text, every feature value and its
    near-duplicate cluster; and the store's models with their cards. Stop with Ctrl-C.

    Example: [cyan]curate browse --store demo-store[/], then open http://127.0.0.1:8765/"""
    import uvicorn

    from curate.browse.app import make_app

    app = make_app(store)  # a missing or empty store is refused here, before anything listens
    sock = listen(host, port)
    if host != LOOPBACK:
        err.print(f"[yellow]note:[/] serving on {host}: anyone who can reach this address can read the store")
    console.print(f"serving {store} at http://{host}:{port}/ (read-only; Ctrl-C to stop)")
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


@friendly
def report(
    store: StoreOpt = "store",
    out: Annotated[str | None, typer.Option(
        help="Local folder to write the report to (replaced whole). Default: the store's own report/ folder "
             "(also on an object store), where scheduled deployments write theirs.")] = None,
    max_docs: Annotated[int, typer.Option(min=0, help="Documents to give a page of their own, in all.")] = 300,
    docs_per_list: Annotated[int, typer.Option(min=0, help="Of those, at most this many from the top of each "
                                                           "list (each score sorted both ways, each domain).")] = 5,
    progress: Annotated[bool | None, typer.Option(help="Progress bar (default: on a terminal).")] = None,
) -> None:
    """Write the browser's pages as a static site (HTML and PNG; open index.html, no server): corpora and
    domains, quarantine, the first page of documents per domain and per score (highest and lowest first) with
    the top documents of each in full, a histogram per score per domain, mixtures, models and MATES stages.

    Example: [cyan]curate report --store demo-store --out demo-report[/], then open demo-report/index.html"""
    from curate.browse.static import write_report, write_report_to_store
    from curate.store import Store

    st = Store.of(store)
    if out is None:
        summary = write_report_to_store(st, max_docs=max_docs, docs_per_list=docs_per_list, progress=progress)
        index = Path(st.path("report/index.html")).resolve().as_uri() if st.is_local else st.uri_of("report/index.html")
    else:
        summary = write_report(st, out, max_docs=max_docs, docs_per_list=docs_per_list, progress=progress)
        index = Path(out).resolve().joinpath("index.html").as_uri()
    console.print(summary.line())
    console.print(f"open {index}")


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, or one clear line when it cannot be (a port in use, an address this
    machine does not have) instead of the server's own error after start-up."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait out TIME_WAIT
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CurateError(f"cannot serve on {host}:{port}: {exc.strerror or exc}; choose another --port "
                          "(or stop what is using it)") from None
    return sock


def register(app: typer.Typer) -> None:
    """Add ``browse`` and ``report`` to the main app."""
    app.command("browse")(browse)
    app.command("report")(report)
