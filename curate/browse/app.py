"""The routes of ``curate browse``: a read-only FastAPI app over one store.

Each worker thread of the server gets its own read-only DuckDB connection (a connection is not safe to
share between threads, and a cursor would lose the store's ``file_search_path``, which the views'
relative paths need); requests on one thread run one after another, so a connection serves one at a time.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import duckdb
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from curate.browse import artifacts, plots, queries
from curate.browse.pages import render
from curate.errors import CurateError
from curate.query import connect
from curate.store import Store

PER_PAGE = 50


class Browser:
    """A store opened for browsing: its per-thread connections and the columns pages can sort by."""

    def __init__(self, store: Store | str) -> None:
        self.store = Store.of(store)
        self._local = threading.local()
        self._opened: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()
        # the first connection opens the views now: a store without documents is refused before serving
        con = self.connection()
        self.numeric = queries.numeric_columns(con)
        # for the filter form; computed once, as the store does not change under a read-only browser
        self.domains = [d for (d,) in con.sql("SELECT DISTINCT domain FROM docs WHERE domain IS NOT NULL "
                                              "ORDER BY 1").fetchall()]

    def connection(self) -> duckdb.DuckDBPyConnection:
        """This thread's read-only connection (opened on first use)."""
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = connect(self.store, read_only=True)
            with self._lock:
                self._opened.append(con)
        return con

    def close(self) -> None:
        """Close every connection: at shutdown, before the interpreter tears down the worker threads that hold
        them (DuckDB aborts the process when it is left to destroy them then)."""
        with self._lock:
            opened, self._opened = self._opened, []
        for con in opened:
            con.close()


def _number(text: str | None, name: str) -> float | None:
    if text is None or not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        raise queries.BadQuery(f"{name}={text!r} is not a number") from None


def doc_query(params: dict[str, str], numeric: list[str]) -> queries.DocQuery:
    """The documents page's query string (``domain``, ``corpus``, ``min_<col>``/``max_<col>``, the form's
    ``range_col``/``range_min``/``range_max``, ``where``, ``sort``, ``order``, ``page``) as a
    :class:`queries.DocQuery`."""
    ranges: dict[str, tuple[float | None, float | None]] = {}
    for key, value in params.items():
        side, _, col = key.partition("_")
        if side in ("min", "max") and col and value.strip():
            lo, hi = ranges.get(col, (None, None))
            number = _number(value, key)
            ranges[col] = (number, hi) if side == "min" else (lo, number)
    col = params.get("range_col", "")
    if col and (params.get("range_min", "").strip() or params.get("range_max", "").strip()):
        ranges[col] = (_number(params.get("range_min"), "range_min"), _number(params.get("range_max"), "range_max"))
    page = params.get("page", "0")
    return queries.DocQuery(
        domain=params.get("domain") or None, corpus=params.get("corpus") or None, ranges=ranges,
        where=params.get("where", ""), sort=params.get("sort") or None,
        descending=params.get("order", "desc") != "asc", page=max(0, int(page)) if page.isdigit() else 0,
        per_page=PER_PAGE)


def make_app(store: Store | str, *, static: bool = False) -> FastAPI:
    """The app for ``store`` (refused here, before any serving, when it is missing or holds no documents).

    ``static``: pages for ``curate report`` (no filter forms; a line saying what needs the live browser)."""
    browser = Browser(store)
    st = browser.store

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        browser.close()

    app = FastAPI(title=f"curate browse {st.uri}", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.state.browser = browser

    def page(name: str, request: Request, started: float, **context: Any) -> HTMLResponse:
        status = context.pop("status_code", 200)
        context.update(store=st.uri, path=request.url.path, ms=1000 * (time.perf_counter() - started),
                       static=static)
        return HTMLResponse(render(name, **context), status_code=status)

    @app.get("/", response_class=HTMLResponse)
    def overview(request: Request) -> HTMLResponse:
        started = time.perf_counter()
        data = queries.overview(browser.connection(), st, browser.numeric)
        return page("overview.html", request, started, **data)

    @app.get("/documents", response_class=HTMLResponse)
    def documents(request: Request) -> HTMLResponse:
        started = time.perf_counter()
        params = dict(request.query_params)
        con = browser.connection()
        error, shown, rows, more = None, [], [], False
        q = queries.DocQuery(where=params.get("where", ""))  # the refused text stays in its box
        try:
            q = doc_query(params, browser.numeric)
            shown, rows, more = queries.documents(con, st, browser.numeric, q)
        except (queries.BadQuery, CurateError) as exc:  # CurateError: the read-only guard's refusal
            error = str(exc)
        return page("documents.html", request, started, q=q, params=params, error=error, shown=shown, rows=rows,
                    more=more, numeric=browser.numeric, domains=browser.domains, corpora=st.corpora(),
                    show=queries.show_value,
                    status_code=400 if error else 200)

    @app.get("/doc/{doc_id}", response_class=HTMLResponse)
    def document(request: Request, doc_id: str) -> HTMLResponse:
        started = time.perf_counter()
        con = browser.connection()
        found = queries.document(con, st, doc_id)
        if found is None:
            return HTMLResponse(render("missing.html", store=st.uri, what=f"document {doc_id}", path="", ms=0.0),
                                status_code=404)
        values = found["features"]
        cluster = values.get("dup_cluster_id")
        members = queries.near_duplicates(con, st, int(cluster)) if cluster is not None else []
        text = values.pop("text", "") or ""
        return page("document.html", request, started, doc_id=doc_id, text=text, values=values,
                    members=members, uses=found["uses"], show=queries.show_value)

    @app.get("/quarantine", response_class=HTMLResponse)
    def quarantine(request: Request, corpus: str | None = None, reason: str | None = None,
                   page_no: int = 0) -> HTMLResponse:
        started = time.perf_counter()
        cols, rows, more = queries.quarantined(browser.connection(), corpus or None, reason or None,
                                               max(0, page_no), PER_PAGE)
        return page("quarantine.html", request, started, cols=cols, rows=rows, more=more, corpus=corpus,
                    reason=reason, page_no=page_no)

    @app.get("/histograms", response_class=HTMLResponse)
    def histograms(request: Request, column: str | None = None, mixture: str | None = None) -> HTMLResponse:
        started = time.perf_counter()
        chosen = column if column in browser.numeric else None
        names = [m for m in st.list_dirs("mixtures") if artifacts.mixture_docs(st, m)]
        return page("histograms.html", request, started, numeric=browser.numeric, column=chosen,
                    mixtures=names, mixture=mixture if mixture in names else None,
                    unknown=column if column and chosen is None else None)

    @app.get("/plot/histogram.png")
    def histogram_png(column: str, mixture: str | None = None) -> Response:
        if column not in browser.numeric:
            return PlainTextResponse(f"unknown score column {column!r}", status_code=404)
        selected = artifacts.mixture_docs(st, mixture) if mixture else None
        if mixture and selected is None:
            return PlainTextResponse(f"no built mixture {mixture!r} in this store", status_code=404)
        png = plots.histogram_png(browser.connection(), st, column, selected=selected, label=mixture or "selected")
        if png is None:
            return PlainTextResponse(f"{column} has no finite values", status_code=404)
        return Response(png, media_type="image/png")

    @app.get("/models", response_class=HTMLResponse)
    def models(request: Request) -> HTMLResponse:
        started = time.perf_counter()
        return page("models.html", request, started, models=artifacts.models(st))

    @app.get("/mixtures", response_class=HTMLResponse)
    def mixtures(request: Request) -> HTMLResponse:
        started = time.perf_counter()
        return page("mixtures.html", request, started, mixtures=artifacts.mixtures(st))

    @app.get("/experiments", response_class=HTMLResponse)
    def experiments(request: Request) -> HTMLResponse:
        started = time.perf_counter()
        return page("experiments.html", request, started, experiments=artifacts.experiments(st))

    @app.get("/mates", response_class=HTMLResponse)
    def mates(request: Request) -> HTMLResponse:
        started = time.perf_counter()
        return page("mates.html", request, started, stages=artifacts.mates_stages(st))

    @app.get("/picture/{path:path}")
    def picture(path: str) -> Response:
        png = artifacts.picture(st, path)
        if png is None:
            return PlainTextResponse(f"no picture {path!r} in this store", status_code=404)
        return Response(png, media_type="image/png")

    @app.get("/healthz", response_class=PlainTextResponse)
    def healthz() -> str:  # the tests (and a user's script) wait on this before loading pages
        return "ok"

    return app
