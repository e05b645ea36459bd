"""``curate browse``: serve a store's documents, scores, quarantine and models as local web pages."""

from __future__ import annotations

import socket
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
    """Add ``browse`` to the main app."""
    app.command("browse")(browse)
