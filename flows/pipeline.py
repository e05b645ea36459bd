"""The ``pipeline`` flow: one scheduled tick of ingest → score → build-mixture, in that order.

Separate deployments on one cron would race (a score started before the ingest it should follow sees
none of the new documents, or no store at all on the first tick); here each step starts when the one
before it has finished, and each still shows up as its own flow run with its own artifact. Last, the
store's static report (``curate report``) is rewritten under ``report/`` in the store when anything changed,
and the ``curate-report`` artifact links to it, so the Prefect UI leads to the pages.
"""

from __future__ import annotations

from typing import Any

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from curate.browse.static import REPORT_FOLDER, write_report_to_store
from curate.errors import CurateError
from curate.store import Store
from flows.ingest import ingest_flow
from flows.mixture import build_mixture_flow
from flows.score import score_flow


@flow(name="pipeline", log_prints=True)
def pipeline_flow(store: str, inputs: list[str] | None = None, corpus: str = "default",
                  scorers: list[str] | None = None, settings: dict[str, dict[str, Any]] | None = None,
                  workers: int | None = None, mixture: str | None = None, report: bool = True,
                  report_url: str | None = None) -> dict[str, Any]:
    """Ingest the files of ``inputs`` not yet ingested into ``corpus``, score whatever is missing or stale
    with ``scorers`` (``workers`` as in the score flow), then rebuild ``mixture`` (a spec path) unless the
    store and spec are what it was built from. Each step is skipped when it has nothing to do.

    ``report``: then rewrite the store's static report (``report/`` in the store) if the store changed, and
    link it from the ``curate-report`` artifact; ``report_url``: where that folder is served (a web server or
    an object-store website), for the link, instead of the folder's own address."""
    out: dict[str, Any] = {}
    if inputs:
        out["ingest"] = ingest_flow(store, inputs, corpus)
    if scorers:
        out["score"] = score_flow(store, scorers, settings, workers=workers)
    if mixture:
        out["mixture"] = build_mixture_flow(store, mixture, reuse=True)
    if report:
        out["report"] = store_report(store, report_url)
    return out


@task(name="store-report")
def store_report(store: str, report_url: str | None = None, max_docs: int = 300,
                 docs_per_list: int = 5) -> dict[str, Any]:
    """Rewrite the store's report when the store changed (limits as in ``curate report``); publish the
    ``curate-report`` artifact with its link."""
    st = Store.open(store)
    try:
        summary = write_report_to_store(st, max_docs=max_docs, docs_per_list=docs_per_list, only_if_changed=True)
    except CurateError as exc:  # nothing ingested yet: nothing to show (a later tick writes it)
        print(f"no report yet: {exc}")
        return {"out": None, "pages": 0, "documents": 0, "pictures": 0, "unchanged": False, "seconds": 0.0,
                "line": f"no report yet: {exc}"}
    create_markdown_artifact(report_markdown(st, summary.line(), report_url), key="curate-report",
                             description="the store's static report (curate report)")
    print(summary.line())
    return {"out": summary.out, "pages": summary.pages, "documents": summary.documents,
            "pictures": summary.pictures, "unchanged": summary.unchanged, "seconds": round(summary.seconds, 2),
            "line": summary.line()}


def report_markdown(st: Store, line: str, report_url: str | None) -> str:
    """The artifact that leads from the Prefect UI to the report."""
    index = f"{REPORT_FOLDER}/index.html"
    where = (report_url.rstrip("/") + "/index.html" if report_url
             else Path(st.path(index)).resolve().as_uri() if st.is_local else st.uri_of(index))
    lines = ["## Store report", "", f"[Open the report]({where})", "", f"`{where}`", "", line, ""]
    if not report_url and st.is_local:
        lines += ["Browsers do not follow a `file://` link from a web page: copy the address into the address "
                  "bar, or serve the folder (`python -m http.server -d "
                  f"{Path(st.path(REPORT_FOLDER)).resolve()}`) and pass its address as the flow's `report_url`. "
                  "For filters and SQL over every document: `curate browse --store "
                  f"{st.uri}`.", ""]
    return "\n".join(lines)
